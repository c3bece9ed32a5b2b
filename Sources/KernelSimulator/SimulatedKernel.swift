import Kernel
import MeshwardCore

/// One node of a `SimulatedFleet`, as the owner of `reqid` sees it.
///
/// `observe` reports only the owner's objects, keys as fingerprints. `apply` sends the
/// operations one at a time, each under the fleet's lock, so the fleet's operation observer
/// sees the state after each. An operation that would write an object of another reqid, or
/// change or delete a foreign object, fails and leaves the object alone.
public struct SimulatedKernel: NodeKernel {
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
        return try fleet.withState { state in
            try state.observe(node: node, reqid: reqid)
        }
    }

    public func apply(
        _ operations: [KernelOperation], deadline: ContinuousClock.Instant
    ) async throws
        -> [OperationResult]
    {
        guard ContinuousClock.now < deadline else {
            throw KernelError.unreachable(node: node, reason: "did not answer before its deadline")
        }
        if let reason = fleet.unreachableReason(node) {
            throw KernelError.unreachable(node: node, reason: reason)
        }
        return operations.map { operation in
            OperationResult(operation: operation, outcome: fleet.apply(operation, on: node, reqid: reqid))
        }
    }
}
