import MeshwardCore

/// One node's security databases, as the reconciler sees them.
///
/// Conformers: `NetlinkKernel` (XFRM over netlink, in the current or a named network
/// namespace) and `SimulatedKernel` (in memory, with a packet model). Both pass one behavioural
/// suite. Every conformer reports and touches only objects whose reqid is `reqid`: it never
/// lists, changes or deletes anything else.
public protocol NodeKernel: Sendable {
    /// The node's name, for messages.
    var node: String { get }

    /// The reqid that marks Meshward's objects on this node.
    var reqid: Reqid { get }

    /// Dumps the owned SAs (with counters) and policies, the foreign SPIs, and the statistics.
    /// Throws `KernelError.unreachable` when the node cannot be reached, or has not answered
    /// by `deadline`.
    func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation

    /// Applies `operations` in order and returns one result per operation, in the same order.
    ///
    /// The batch is not a transaction: a failed operation does not undo earlier ones and does
    /// not stop later ones (each stands alone, as netlink processes them). When the node stops
    /// answering midway, the operations after the last acknowledged one are `.notAttempted`;
    /// those sent whose answer had not come by `deadline` are `.indeterminate`. Throws only
    /// when nothing could be sent at all (the node is unreachable, or its deadline passed first).
    func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult]

    /// A stream of the kernel's changes to its owned objects after `position` (design.md §12):
    /// a replay when `position` is still in the watch's ring, a snapshot otherwise, then every
    /// change as it happens, with progress in between. Nil when this backend is not watched
    /// (it is polled).
    func watch(from position: WatchPosition?) -> AsyncThrowingStream<WatchMessage, any Error>?

    /// `apply(_:deadline:)`, answered with the watch's position once the batch's changes are in
    /// its model, so that a receiver of the watch knows when its copy includes them (nil for a
    /// kernel that is not watched).
    func applyReportingPosition(
        _ operations: [KernelOperation], deadline: ContinuousClock.Instant
    ) async throws -> AppliedBatch

    /// Releases what the kernel holds open (a remote connection), in order; a no-op for local
    /// kernels. The controller calls it when a command or a cycle is done with the fleet.
    func close() async
}

extension NodeKernel {
    public func close() async {}

    public func watch(from position: WatchPosition?) -> AsyncThrowingStream<WatchMessage, any Error>? { nil }

    public func applyReportingPosition(
        _ operations: [KernelOperation], deadline: ContinuousClock.Instant
    ) async throws -> AppliedBatch {
        AppliedBatch(results: try await apply(operations, deadline: deadline), position: nil)
    }

    /// How long a call waits for a kernel unless the caller gives a deadline.
    public static var defaultCallTimeout: Duration { .seconds(30) }

    /// `observe(deadline:)` with the default timeout.
    public func observe() async throws -> NodeObservation {
        try await observe(deadline: .now + Self.defaultCallTimeout)
    }

    /// `apply(_:deadline:)` with the default timeout.
    public func apply(_ operations: [KernelOperation]) async throws -> [OperationResult] {
        try await apply(operations, deadline: .now + Self.defaultCallTimeout)
    }
}
