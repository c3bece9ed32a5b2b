/// The controller's watch of its fleet in numbers (`FleetWatch.summary`), for metrics: how many
/// nodes it follows live, how many went stale, how many are polled, and what its streams did
/// since the session began.
public struct WatchSummary: Sendable, Hashable {
    public var live = 0
    public var stale = 0
    public var polled = 0
    /// Changes received on every stream (replayed and live).
    public var changes = 0
    /// Copies rebuilt from a snapshot, and how many of those a progress digest forced.
    public var snapshots = 0
    public var digestMismatches = 0
    /// Streams opened again after they ended.
    public var resumes = 0
    /// The longest any live node's stream has been silent, in seconds: how old the cache is.
    public var cacheAgeSeconds: Double = 0

    public init() {}
}
