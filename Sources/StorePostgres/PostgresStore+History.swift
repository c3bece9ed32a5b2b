import Foundation
import MeshwardCore
import PostgresNIO
import Store

extension PostgresStore: JournalStore {
    /// Appends entries in order, in one transaction of multi-row INSERTs, and returns them with
    /// their ids (increasing in the order of `entries`).
    @discardableResult
    public func appendJournal(_ entries: [JournalEntry]) async throws -> [JournalEntry] {
        guard !entries.isEmpty else { return [] }
        let ids = try await transaction("append to the journal") { connection -> [Int64] in
            var ids: [Int64] = []
            ids.reserveCapacity(entries.count)
            let rows: [[SQLValue]] = entries.map { entry in
                [
                    .text(entry.node), .text(entry.operation), .text(entry.target), .text(entry.channel?.from),
                    .text(entry.channel?.to), .text(entry.channel?.family.rawValue), .real(entry.plannedAt.storedValue),
                    .real(entry.appliedAt?.storedValue), .text(entry.result.description), .integer(entry.revision),
                ]
            }
            for chunk in SQLRows.chunks(rows) {
                var chunkIDs: [Int64] = []
                for try await id in try await connection.query(
                    SQLRows.query(
                        """
                        INSERT INTO journal (node, operation, target, channel_from, channel_to, channel_family,
                            planned_at, applied_at, result, revision_id)
                        """, chunk, "RETURNING id"),
                    logger: logger
                ).decode(Int64.self) {
                    chunkIDs.append(id)
                }
                // One statement's rows take the sequence's values in the order they are listed.
                ids.append(contentsOf: chunkIDs.sorted())
            }
            return ids
        }
        return zip(entries, ids).map { entry, id in
            var stored = entry
            stored.id = id
            return stored
        }
    }

    /// Writes `appliedAt` and `result` of entries by id, in one transaction of multi-row UPDATEs.
    public func completeJournal(_ entries: [JournalEntry]) async throws {
        let rows: [[SQLValue]] = entries.compactMap { entry in
            entry.id.map { [.integer($0), .real(entry.appliedAt?.storedValue), .text(entry.result.description)] }
        }
        guard !rows.isEmpty else { return }
        try await transaction("complete journal entries") { connection in
            for chunk in SQLRows.chunks(rows) {
                try await connection.query(
                    SQLRows.query(
                        "UPDATE journal AS j SET applied_at = v.applied_at, result = v.result FROM (", chunk,
                        ") AS v (id, applied_at, result) WHERE j.id = v.id"),
                    logger: logger)
            }
        }
    }

    /// Journal entries, newest first; only `node`'s when given, at most `limit` when given.
    public func journal(limit: Int?, node: String?) async throws -> [JournalEntry] {
        let database = url.description
        return try await transaction("read the journal", .snapshot) { connection in
            let limit = limit.map(Int64.init)
            let rows = try await connection.query(
                """
                SELECT id, node, operation, target, channel_from, channel_to, channel_family, planned_at,
                    applied_at, result, revision_id FROM journal
                WHERE \(node)::text IS NULL OR node = \(node)
                ORDER BY id DESC LIMIT \(limit)
                """, logger: logger)
            var entries: [JournalEntry] = []
            for try await (id, node, operation, target, from, to, familyText, plannedAt, appliedAt, result, revision)
                in rows.decode(
                    (Int64, String, String, String, String?, String?, String?, Double, Double?, String, Int64?).self)
            {
                var channel: ChannelID?
                if let from, let to, let familyText {
                    guard let family = AddressFamily(rawValue: familyText) else {
                        throw StoreError.corrupt(path: database, reason: "journal family '\(familyText)' is unknown")
                    }
                    channel = ChannelID(from: from, to: to, family: family)
                }
                entries.append(
                    JournalEntry(
                        id: id, node: node, operation: operation, target: target, channel: channel,
                        plannedAt: Date(storedValue: plannedAt), appliedAt: appliedAt.map(Date.init(storedValue:)),
                        result: JournalResult(storedText: result), revision: revision))
            }
            return entries
        }
    }

    /// Deletes entries planned before `date` and returns how many.
    @discardableResult
    public func pruneJournal(plannedBefore date: Date) async throws -> Int {
        try await transaction("prune the journal") { connection in
            let count = try await connection.query(
                """
                WITH deleted AS (DELETE FROM journal WHERE planned_at < \(date.storedValue) RETURNING 1)
                SELECT count(*) FROM deleted
                """, logger: logger
            ).collect().first?.decode(Int64.self)
            return Int(count ?? 0)
        }
    }
}

extension PostgresStore: RevisionStore {
    /// Records an applied revision and returns it with its id (increasing with every record).
    public func recordRevision(
        hash: String, source: String, summary: String, at: Date, command: String?
    ) async throws -> RevisionRecord {
        let id = try await transaction("record revision") { connection -> Int64 in
            let rows = try await connection.query(
                """
                INSERT INTO revisions (hash, source, summary, applied_at, command)
                VALUES (\(hash), \(source), \(summary), \(at.storedValue), \(command)) RETURNING id
                """, logger: logger
            ).collect()
            guard let id = try rows.first?.decode(Int64.self) else {
                throw StoreError.database(
                    path: url.description, operation: "record revision", message: "no id returned")
            }
            return id
        }
        return RevisionRecord(id: id, hash: hash, source: source, summary: summary, appliedAt: at, command: command)
    }

    /// Applied revisions, newest first; at most `limit` of them when given.
    public func revisions(limit: Int?) async throws -> [RevisionRecord] {
        try await transaction("read revisions", .snapshot) { connection in
            let limit = limit.map(Int64.init)
            var records: [RevisionRecord] = []
            for try await (id, hash, source, summary, appliedAt, command) in try await connection.query(
                "SELECT id, hash, source, summary, applied_at, command FROM revisions ORDER BY id DESC LIMIT \(limit)",
                logger: logger
            ).decode((Int64, String, String, String, Double, String?).self) {
                records.append(
                    RevisionRecord(
                        id: id, hash: hash, source: source, summary: summary, appliedAt: Date(storedValue: appliedAt),
                        command: command))
            }
            return records
        }
    }
}

extension PostgresStore: MetadataStore {
    /// The value of `key`, or nil when unset.
    public func metadata(_ key: String) async throws -> String? {
        try await transaction("read metadata '\(key)'", .snapshot) { connection in
            try await connection.query("SELECT value FROM metadata WHERE key = \(key)", logger: logger).collect()
                .first?.decode(String.self)
        }
    }

    /// Sets the value of `key`; nil deletes it. Fenced by the lease like every write.
    public func setMetadata(_ key: String, _ value: String?) async throws {
        try await transaction("set metadata '\(key)'") { connection in
            if let value {
                try await connection.query(
                    """
                    INSERT INTO metadata (key, value) VALUES (\(key), \(value))
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value
                    """, logger: logger)
            } else {
                try await connection.query("DELETE FROM metadata WHERE key = \(key)", logger: logger)
            }
        }
    }
}

extension PostgresStore: ControllerStore {}
