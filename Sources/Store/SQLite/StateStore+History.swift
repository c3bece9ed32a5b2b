import Foundation
import GRDB
import MeshwardCore

extension StateStore {
    /// Records an applied spec revision and returns it with its id.
    ///
    /// - Parameter command: what made it (`apply`, `rekey --all`, `reconcile`), when known.
    public func recordRevision(
        hash: String, source: String, summary: String, at: Date, command: String? = nil
    ) throws -> RevisionRecord {
        let id = try write("record revision") { db -> Int64 in
            try db.execute(
                sql: "INSERT INTO revisions (hash, source, summary, applied_at, command) VALUES (?, ?, ?, ?, ?)",
                arguments: [hash, source, summary, at.storedValue, command])
            return db.lastInsertedRowID
        }
        return RevisionRecord(id: id, hash: hash, source: source, summary: summary, appliedAt: at, command: command)
    }

    /// Applied revisions, newest first; at most `limit` of them when given.
    public func revisions(limit: Int?) throws -> [RevisionRecord] {
        try read("read revisions") { db in
            try Row.fetchAll(
                db,
                sql: "SELECT id, hash, source, summary, applied_at, command FROM revisions ORDER BY id DESC LIMIT ?",
                arguments: [limit ?? -1]
            ).map { row in
                RevisionRecord(
                    id: row[0], hash: row[1], source: row[2], summary: row[3], appliedAt: Date(storedValue: row[4]),
                    command: row[5])
            }
        }
    }

    /// Appends journal entries in ONE transaction, in order, and returns them with their ids.
    @discardableResult
    public func appendJournal(_ entries: [JournalEntry]) throws -> [JournalEntry] {
        try write("append to the journal") { db in
            let insert = try db.cachedStatement(
                sql: """
                    INSERT INTO journal (node, operation, target, channel_from, channel_to, channel_family,
                        planned_at, applied_at, result, revision_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            return try entries.map { entry in
                try insert.execute(arguments: [
                    entry.node, entry.operation, entry.target, entry.channel?.from, entry.channel?.to,
                    entry.channel?.family.rawValue, entry.plannedAt.storedValue, entry.appliedAt?.storedValue,
                    entry.result.description, entry.revision,
                ])
                var stored = entry
                stored.id = db.lastInsertedRowID
                return stored
            }
        }
    }

    /// Writes the outcome of journal entries appended before their operations were sent: each
    /// entry's `appliedAt` and `result`, by its id, in one transaction.
    public func completeJournal(_ entries: [JournalEntry]) throws {
        guard !entries.isEmpty else { return }
        try write("complete journal entries") { db in
            let update = try db.cachedStatement(sql: "UPDATE journal SET applied_at = ?, result = ? WHERE id = ?")
            for entry in entries {
                guard let id = entry.id else { continue }
                try update.execute(arguments: [entry.appliedAt?.storedValue, entry.result.description, id])
            }
        }
    }

    /// Journal entries, newest first; only `node`'s when given, at most `limit` when given.
    public func journal(limit: Int?, node: String?) throws -> [JournalEntry] {
        try read("read the journal") { db in
            let columns = """
                SELECT id, node, operation, target, channel_from, channel_to, channel_family, planned_at,
                    applied_at, result, revision_id FROM journal
                """
            let rows: [Row]
            if let node {
                rows = try Row.fetchAll(
                    db, sql: columns + " WHERE node = ? ORDER BY id DESC LIMIT ?", arguments: [node, limit ?? -1])
            } else {
                rows = try Row.fetchAll(db, sql: columns + " ORDER BY id DESC LIMIT ?", arguments: [limit ?? -1])
            }
            return try rows.map { row in
                var channel: ChannelID?
                if let from: String = row[4], let to: String = row[5], let familyText: String = row[6] {
                    guard let family = AddressFamily(rawValue: familyText) else {
                        throw StoreError.corrupt(
                            path: databasePath, reason: "journal family '\(familyText)' is unknown")
                    }
                    channel = ChannelID(from: from, to: to, family: family)
                }
                return JournalEntry(
                    id: row[0], node: row[1], operation: row[2], target: row[3], channel: channel,
                    plannedAt: Date(storedValue: row[7]), appliedAt: (row[8] as Double?).map(Date.init(storedValue:)),
                    result: JournalResult(storedText: row[9]), revision: row[10])
            }
        }
    }

    /// Deletes journal entries planned before `date`; returns how many. The journal otherwise
    /// grows with every kernel operation.
    @discardableResult
    public func pruneJournal(plannedBefore date: Date) throws -> Int {
        try write("prune the journal") { db in
            try db.execute(sql: "DELETE FROM journal WHERE planned_at < ?", arguments: [date.storedValue])
            return db.changesCount
        }
    }

    /// Sets a metadata value (for example the last pass time); nil deletes the key.
    public func setMetadata(_ key: String, _ value: String?) throws {
        try write("set metadata '\(key)'") { db in
            if let value {
                try db.execute(
                    sql: "INSERT INTO metadata (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?2",
                    arguments: [key, value])
            } else {
                try db.execute(sql: "DELETE FROM metadata WHERE key = ?", arguments: [key])
            }
        }
    }

    /// The metadata value of `key`, or nil when unset.
    public func metadata(_ key: String) throws -> String? {
        try read("read metadata '\(key)'") { db in
            try String.fetchOne(db, sql: "SELECT value FROM metadata WHERE key = ?", arguments: [key])
        }
    }
}
