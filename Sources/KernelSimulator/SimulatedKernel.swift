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

    public func observe() async throws -> NodeObservation {
        try fleet.withState { state in
            try state.observe(node: node, reqid: reqid)
        }
    }

    public func apply(_ operations: [KernelOperation]) async throws -> [OperationResult] {
        if let reason = fleet.unreachableReason(node) {
            throw KernelError.unreachable(node: node, reason: reason)
        }
        return operations.map { operation in
            OperationResult(operation: operation, outcome: fleet.apply(operation, on: node, reqid: reqid))
        }
    }
}
