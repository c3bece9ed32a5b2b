import Foundation
import GRDB
import MeshwardCore

extension StateStore {
    /// Every unaccounted inbound SA whose drain has started, as recorded by earlier passes.
    public func unaccountedSAs() throws -> [UnaccountedSA] {
        try read("read unaccounted SAs") { db in
            try Row.fetchAll(db, sql: "SELECT destination, spi, freed_at FROM unaccounted_sas").compactMap { row in
                let bytes: Data = row[0]
                guard let destination = IPAddress(bytes: [UInt8](bytes)) else { return nil }
                return UnaccountedSA(
                    destination: destination, spi: SPI(UInt32(truncatingIfNeeded: row[1] as Int64)),
                    freedAt: Date(storedValue: row[2]))
            }
        }
    }

    /// Records the drains that started (an SA already recorded keeps its first time) and forgets
    /// the SAs in `forgotten` (deleted, or no longer held), in one transaction.
    public func recordUnaccountedSAs(freed: [UnaccountedSA], forgotten: [(destination: IPAddress, spi: SPI)]) throws {
        guard !freed.isEmpty || !forgotten.isEmpty else { return }
        try write("record unaccounted SAs") { db in
            for sa in freed {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO unaccounted_sas (destination, spi, freed_at) VALUES (?, ?, ?)
                        ON CONFLICT (destination, spi) DO NOTHING
                        """
                ).execute(arguments: [Data(sa.destination.bytes), Int64(sa.spi.rawValue), sa.freedAt.storedValue])
            }
            for sa in forgotten {
                try db.cachedStatement(sql: "DELETE FROM unaccounted_sas WHERE destination = ? AND spi = ?")
                    .execute(arguments: [Data(sa.destination.bytes), Int64(sa.spi.rawValue)])
            }
        }
    }
}
