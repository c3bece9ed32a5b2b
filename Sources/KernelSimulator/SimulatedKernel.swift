import Kernel
import MeshwardCore

/// One node of a `SimulatedFleet`, as the owner of `reqid` sees it.
///
/// `observe` reports only the owner's objects, keys as fingerprints. `apply` sends the
/// operations in order; while the fleet has an operation observer, one at a time, each under
/// the fleet's lock, so that the observer sees the state after each (without one, the batch
/// takes the lock once). An operation that would write an object of another reqid, or
/// change or delete a foreign object, fails and leaves the object alone.
///
/// It is a `WatchedKernel`: the model is the fleet's, one per node and owner (see
/// `SimulatedFleet.startWatching(node:reqid:)`). Once it is started, an observation
/// resynchronises it and reports its position, and a batch reports the position after it.
public struct SimulatedKernel: WatchedKernel {
    /// The node's name.
    public let node: String
    /// The reqid that marks the owner's objects.
    public let reqid: Reqid
    /// The fleet the node belongs to.
    public let fleet: SimulatedFleet

    /// A kernel for `node` in `fleet`; `SimulatedFleet.kernel(for:reqid:)` says the same.
    public init(node: String, reqid: Reqid, fleet: SimulatedFleet) {
        self.node = node
        self.reqid = reqid
        self.fleet = fleet
    }

    /// The simulated kernel answers at once; a call whose deadline has already passed fails as
    /// a kernel that did not answer would.
    public func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
        guard ContinuousClock.now < deadline else {
            throw KernelError.unreachable(node: node, reason: "did not answer before its deadline")
        }
        return try fleet.observeWatched(node: node, reqid: reqid)
    }

    /// The fleet's model of this node and owner, made on first use. Throws
    /// `KernelError.unreachable` when the fleet has no such node.
    public func startWatching() async throws -> KernelWatchModel {
        try fleet.startWatching(node: node, reqid: reqid)
    }

    /// The model's stream after `position`, starting the watch if needed. While the node cannot
    /// be reached the stream ends at once with `KernelError.unreachable`, and a node that
    /// becomes unreachable ends its streams (`KernelWatchError.stopped`).
    public func watch(from position: WatchPosition?) -> AsyncThrowingStream<WatchMessage, any Error>? {
        do {
            if let reason = fleet.unreachableReason(node) {
                throw KernelError.unreachable(node: node, reason: reason)
            }
            return try fleet.startWatching(node: node, reqid: reqid).watch(from: position)
        } catch {
            return AsyncThrowingStream { $0.finish(throwing: error) }
        }
    }

    /// `apply(_:deadline:)`, then the position of the node's watch after the batch (every
    /// change of the batch is recorded by then); nil while the node is not watched.
    public func applyReportingPosition(
        _ operations: [KernelOperation], deadline: ContinuousClock.Instant
    ) async throws -> AppliedBatch {
        let results = try await apply(operations, deadline: deadline)
        return AppliedBatch(results: results, position: fleet.watchModel(node: node, reqid: reqid)?.position)
    }

    public func apply(
        _ operations: [KernelOperation], deadline: ContinuousClock.Instant
    ) async throws
        -> [OperationResult]
    {
        guard ContinuousClock.now < deadline else {
            throw KernelError.unreachable(node: node, reason: "did not answer before its deadline")
        }
        return zip(operations, try fleet.apply(operations, on: node, reqid: reqid)).map {
            OperationResult(operation: $0, outcome: $1)
        }
    }
}
