import Foundation

/// One applied revision of the spec.
public struct RevisionRecord: Sendable, Hashable, Codable {
    /// Increasing with every recorded revision; journal entries refer to it.
    public var id: Int64
    /// The content hash of the compiled spec.
    public var hash: String
    /// Where the spec came from (its paths, as given).
    public var source: String
    /// A one-line account of what the revision changed.
    public var summary: String
    public var appliedAt: Date
    /// What made the revision (`apply`, `rekey --all`, `reconcile`); nil when not recorded.
    public var command: String?

    public init(id: Int64, hash: String, source: String, summary: String, appliedAt: Date, command: String? = nil) {
        self.id = id
        self.hash = hash
        self.source = source
        self.summary = summary
        self.appliedAt = appliedAt
        self.command = command
    }
}
