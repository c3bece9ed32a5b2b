import Foundation

/// The role that keeps one-time join tokens: for each, the node it enrolls, its expiry and a
/// SHA-256 verifier of its secret. The secret itself is never stored.
///
/// Writes are fenced by the lease like every write once a connection holds it.
public protocol JoinTokenStore: Sendable {
    /// Stores a new token. Throws `JoinTokenError.duplicate` when its id is taken.
    func createJoinToken(_ token: NewJoinToken, now: Date) async throws

    /// Every token neither spent nor revoked, oldest first; expired ones are listed too (their
    /// expiry says so). Never a verifier.
    func unspentJoinTokens() async throws -> [JoinTokenSummary]

    /// The token stored under `id` with its verifier and state, or nil.
    func joinToken(id: String) async throws -> JoinTokenRecord?

    /// Revokes the unspent token `id`. Throws `JoinTokenError` naming the token when it is
    /// unknown, spent, or revoked already.
    func revokeJoinToken(id: String, now: Date) async throws

    /// Spends token `id` for `node` in one transaction: it must exist, be neither spent nor
    /// revoked, not be expired at `now`, and have been issued for `node`; it is then marked spent
    /// at `now` and returned. Of two spends of one token, exactly one succeeds; the other throws
    /// `JoinTokenError` naming the token and why.
    func spendJoinToken(id: String, node: String, now: Date) async throws -> JoinTokenRecord
}
