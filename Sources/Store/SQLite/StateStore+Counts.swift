import GRDB

extension StateStore {
    /// True when the Store holds at least one channel. Reads one row; unseals nothing.
    public func hasChannels() throws -> Bool {
        try read("count channels") { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM channels)") ?? false
        }
    }
}
