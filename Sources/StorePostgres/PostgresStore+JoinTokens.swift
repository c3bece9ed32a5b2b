import Foundation
import PostgresNIO
import Store

extension PostgresStore: JoinTokenStore {
    /// Stores a new token (`ON CONFLICT DO NOTHING`); `JoinTokenError.duplicate` when its id is taken.
    public func createJoinToken(_ token: NewJoinToken, now: Date) async throws {
        let inserted = try await transaction("store join token \(token.id)") { connection in
            var binds = PostgresBindings()
            binds.append(token.id)
            binds.append(token.node)
            binds.append(ByteBuffer(bytes: token.verifier))
            binds.append(now.storedValue)
            binds.append(token.expiresAt.storedValue)
            return try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO join_tokens (id, node, verifier, created_at, expires_at)
                        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING id
                        """, binds: binds),
                logger: logger
            ).collect().count
        }
        if inserted == 0 { throw JoinTokenError.duplicate(id: token.id) }
    }

    /// Every token neither spent nor revoked, oldest first.
    public func unspentJoinTokens() async throws -> [JoinTokenSummary] {
        try await transaction("list join tokens", .snapshot) { connection in
            let rows = try await connection.query(
                """
                SELECT id, node, created_at, expires_at FROM join_tokens
                WHERE spent_at IS NULL AND revoked_at IS NULL ORDER BY created_at, id
                """, logger: logger
            ).collect()
            return try rows.map { row in
                let row = row.makeRandomAccess()
                return JoinTokenSummary(
                    id: try row[0].decode(String.self), node: try row[1].decode(String.self),
                    createdAt: Date(storedValue: try row[2].decode(Double.self)),
                    expiresAt: Date(storedValue: try row[3].decode(Double.self)))
            }
        }
    }

    /// The token stored under `id`, or nil.
    public func joinToken(id: String) async throws -> JoinTokenRecord? {
        try await transaction("read join token \(id)", .snapshot) { connection in
            try await fetchJoinToken(connection, id: id, lock: "")
        }
    }

    /// Revokes the unspent token `id`, its row locked (`FOR UPDATE`) while it is checked.
    public func revokeJoinToken(id: String, now: Date) async throws {
        try await transaction("revoke join token \(id)") { connection in
            guard let token = try await fetchJoinToken(connection, id: id, lock: "FOR UPDATE") else {
                throw JoinTokenError.unknown(id: id)
            }
            if let spentAt = token.spentAt { throw JoinTokenError.spent(id: id, at: spentAt) }
            if let revokedAt = token.revokedAt { throw JoinTokenError.revoked(id: id, at: revokedAt) }
            try await connection.query(
                "UPDATE join_tokens SET revoked_at = \(now.storedValue) WHERE id = \(id)", logger: logger)
        }
    }

    /// Spends token `id` for `node` in one transaction. The row is locked (`FOR UPDATE`) before it
    /// is checked: a second spend waits for the first to commit, then reads the token spent.
    public func spendJoinToken(id: String, node: String, now: Date) async throws -> JoinTokenRecord {
        try await transaction("spend join token \(id)") { connection in
            guard var token = try await fetchJoinToken(connection, id: id, lock: "FOR UPDATE") else {
                throw JoinTokenError.unknown(id: id)
            }
            if let refusal = token.refusal(node: node, now: now) { throw refusal }
            try await connection.query(
                "UPDATE join_tokens SET spent_at = \(now.storedValue) WHERE id = \(id)", logger: logger)
            token.spentAt = now
            return token
        }
    }

    private func fetchJoinToken(
        _ connection: PostgresConnection, id: String, lock: String
    ) async throws
        -> JoinTokenRecord?
    {
        var binds = PostgresBindings()
        binds.append(id)
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT id, node, verifier, created_at, expires_at, spent_at, revoked_at
                    FROM join_tokens WHERE id = $1 \(lock)
                    """, binds: binds),
            logger: logger
        ).collect()
        guard let row = rows.first?.makeRandomAccess() else { return nil }
        return JoinTokenRecord(
            id: try row[0].decode(String.self), node: try row[1].decode(String.self), verifier: try row.bytes(2),
            createdAt: Date(storedValue: try row[3].decode(Double.self)),
            expiresAt: Date(storedValue: try row[4].decode(Double.self)),
            spentAt: try row[5].decode(Double?.self).map(Date.init(storedValue:)),
            revokedAt: try row[6].decode(Double?.self).map(Date.init(storedValue:)))
    }
}
