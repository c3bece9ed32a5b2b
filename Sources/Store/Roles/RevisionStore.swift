import Foundation

/// The role that keeps the applied spec revisions, for `meshward history`.
public protocol RevisionStore: Sendable {
    /// Records an applied revision and returns it with its id (increasing with every record).
    ///
    /// - Parameter command: what made it (`apply`, `rekey --all`, `reconcile`), when known.
    func recordRevision(
        hash: String, source: String, summary: String, at: Date, command: String?
    ) async throws -> RevisionRecord

    /// Applied revisions, newest first; at most `limit` of them when given.
    func revisions(limit: Int?) async throws -> [RevisionRecord]
}
