import Foundation
import GRDB

extension StateStore: JoinTokenStore {
    /// Stores a new token; `JoinTokenError.duplicate` when its id is taken.
    public func createJoinToken(_ token: NewJoinToken, now: Date) throws {
        try write("store join token \(token.id)") { db in
            if try Self.fetchJoinToken(db, id: token.id) != nil { throw JoinTokenError.duplicate(id: token.id) }
            try db.execute(
                sql: """
                    INSERT INTO join_tokens (id, node, verifier, created_at, expires_at)
                    VALUES (?, ?, ?, ?, ?)
                    """,
                arguments: [token.id, token.node, Data(token.verifier), now.storedValue, token.expiresAt.storedValue])
        }
    }

    /// Every token neither spent nor revoked, oldest first.
    public func unspentJoinTokens() throws -> [JoinTokenSummary] {
        try read("list join tokens") { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, node, created_at, expires_at FROM join_tokens
                    WHERE spent_at IS NULL AND revoked_at IS NULL ORDER BY created_at, id
                    """
            ).map { row in
                JoinTokenSummary(
                    id: row[0], node: row[1], createdAt: Date(storedValue: row[2]),
                    expiresAt: Date(storedValue: row[3]))
            }
        }
    }

    /// The token stored under `id`, or nil.
    public func joinToken(id: String) throws -> JoinTokenRecord? {
        try read("read join token \(id)") { db in try Self.fetchJoinToken(db, id: id) }
    }

    /// Revokes the unspent token `id`.
    public func revokeJoinToken(id: String, now: Date) throws {
        try write("revoke join token \(id)") { db in
            guard let token = try Self.fetchJoinToken(db, id: id) else { throw JoinTokenError.unknown(id: id) }
            if let spentAt = token.spentAt { throw JoinTokenError.spent(id: id, at: spentAt) }
            if let revokedAt = token.revokedAt { throw JoinTokenError.revoked(id: id, at: revokedAt) }
            try db.execute(sql: "UPDATE join_tokens SET revoked_at = ? WHERE id = ?", arguments: [now.storedValue, id])
        }
    }

    /// Spends token `id` for `node` in one write transaction (SQLite has one writer at a time,
    /// so the check and the mark cannot interleave with another spend).
    public func spendJoinToken(id: String, node: String, now: Date) throws -> JoinTokenRecord {
        try write("spend join token \(id)") { db in
            guard var token = try Self.fetchJoinToken(db, id: id) else { throw JoinTokenError.unknown(id: id) }
            if let refusal = token.refusal(node: node, now: now) { throw refusal }
            try db.execute(
                sql: "UPDATE join_tokens SET spent_at = ? WHERE id = ? AND spent_at IS NULL AND revoked_at IS NULL",
                arguments: [now.storedValue, id])
            guard db.changesCount == 1 else {
                throw StoreError.corrupt(path: databasePath, reason: "join token \(id) changed inside its spend")
            }
            token.spentAt = now
            return token
        }
    }

    private static func fetchJoinToken(_ db: Database, id: String) throws -> JoinTokenRecord? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT id, node, verifier, created_at, expires_at, spent_at, revoked_at
                    FROM join_tokens WHERE id = ?
                    """,
                arguments: [id])
        else { return nil }
        let verifier: Data = row[2]
        let spent: Double? = row[5]
        let revoked: Double? = row[6]
        return JoinTokenRecord(
            id: row[0], node: row[1], verifier: [UInt8](verifier), createdAt: Date(storedValue: row[3]),
            expiresAt: Date(storedValue: row[4]), spentAt: spent.map(Date.init(storedValue:)),
            revokedAt: revoked.map(Date.init(storedValue:)))
    }
}
