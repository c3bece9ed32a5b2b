import Foundation

/// A join token to store: what `JoinTokenStore.createJoinToken` takes.
public struct NewJoinToken: Sendable, Equatable {
    /// The token's id: 16 lower-case hex digits (8 random bytes). Public, printed and listed.
    public var id: String
    /// The node the token enrolls.
    public var node: String
    /// SHA-256 of the token's secret (32 bytes). The secret itself is never stored.
    public var verifier: [UInt8]
    /// When the token stops being accepted.
    public var expiresAt: Date

    public init(id: String, node: String, verifier: [UInt8], expiresAt: Date) {
        self.id = id
        self.node = node
        self.verifier = verifier
        self.expiresAt = expiresAt
    }
}

/// A join token as listed: never its verifier.
public struct JoinTokenSummary: Sendable, Equatable {
    public var id: String
    public var node: String
    public var createdAt: Date
    public var expiresAt: Date

    public init(id: String, node: String, createdAt: Date, expiresAt: Date) {
        self.id = id
        self.node = node
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// A join token as stored, with its verifier and what became of it.
public struct JoinTokenRecord: Sendable, Equatable {
    public var id: String
    public var node: String
    /// SHA-256 of the token's secret (32 bytes).
    public var verifier: [UInt8]
    public var createdAt: Date
    public var expiresAt: Date
    /// When the token was spent, if it was.
    public var spentAt: Date?
    /// When the token was revoked, if it was.
    public var revokedAt: Date?

    public init(
        id: String, node: String, verifier: [UInt8], createdAt: Date, expiresAt: Date, spentAt: Date?,
        revokedAt: Date?
    ) {
        self.id = id
        self.node = node
        self.verifier = verifier
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.spentAt = spentAt
        self.revokedAt = revokedAt
    }

    /// The summary of this token (no verifier).
    public var summary: JoinTokenSummary {
        JoinTokenSummary(id: id, node: node, createdAt: createdAt, expiresAt: expiresAt)
    }

    /// Why this token cannot be spent for `node` at `now`, or nil when it can. Both conformers
    /// decide a spend with this, inside the spend's transaction.
    public func refusal(node: String, now: Date) -> JoinTokenError? {
        if let spentAt { return .spent(id: id, at: spentAt) }
        if let revokedAt { return .revoked(id: id, at: revokedAt) }
        if now >= expiresAt { return .expired(id: id, at: expiresAt) }
        if node != self.node { return .wrongNode(id: id, issuedFor: self.node, presentedFor: node) }
        return nil
    }
}
