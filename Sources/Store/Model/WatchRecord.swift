import Foundation

/// One watched node as the reconcile loop last recorded its watch (design.md §12), for `status`
/// in another process: whether its stream was live, when it last spoke and changed, and how often
/// its copy was rebuilt.
public struct WatchRecord: Codable, Sendable, Hashable {
    /// `live`, `stale` (silent for three progress intervals) or `polled` (no watch).
    public var state: String
    /// When the node's stream last said anything.
    public var lastMessageAt: Date?
    /// When the node's objects last changed as the stream showed them.
    public var lastChangeAt: Date?
    /// Copies rebuilt from a snapshot, and how many a progress digest forced.
    public var snapshots: Int
    public var digestMismatches: Int
    /// Streams opened again after they ended.
    public var resumes: Int
    /// When the loop recorded this.
    public var recordedAt: Date

    public init(
        state: String, lastMessageAt: Date?, lastChangeAt: Date?, snapshots: Int, digestMismatches: Int, resumes: Int,
        recordedAt: Date
    ) {
        self.state = state
        self.lastMessageAt = lastMessageAt
        self.lastChangeAt = lastChangeAt
        self.snapshots = snapshots
        self.digestMismatches = digestMismatches
        self.resumes = resumes
        self.recordedAt = recordedAt
    }
}
