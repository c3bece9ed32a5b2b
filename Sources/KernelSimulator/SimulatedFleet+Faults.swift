import Kernel
import MeshwardCore

extension SimulatedFleet {
    /// Makes the `nth` operation applied to `node` from now on (1 for the next) fail with `errno`
    /// and have no effect.
    public func failOperation(on node: String, nth: Int, errno: Int32) {
        withState { $0.failOperation(on: node, nth: nth, errno: errno) }
    }

    /// Drops every failure still scheduled on `node` and any pending `stopAnswering`.
    public func clearFaults(on node: String) {
        withState { $0.clearFaults(on: node) }
    }

    /// Makes `node`'s kernel reachable or not: an unreachable node's `observe` and `apply` throw
    /// `KernelError.unreachable`. Its packets still flow.
    public func setReachable(_ node: String, _ reachable: Bool) {
        withState { $0.setReachable(node, reachable) }
    }

    /// Lets `node` answer `count` more operations, then makes it unreachable: in a batch the
    /// rest are `.notAttempted`, and later calls throw `KernelError.unreachable`.
    public func stopAnswering(on node: String, afterOperations count: Int) {
        withState { $0.stopAnswering(on: node, afterOperations: count) }
    }

    /// Reboot or re-image `node`: every SA and policy, ours and foreign, and its statistics are gone.
    public func wipe(node: String) {
        withState { $0.wipe(node: node) }
    }

    /// An operator flushes `node`'s SAs by hand (`ip xfrm state flush`): ours and foreign.
    public func flushSecurityAssociations(on node: String) {
        withState { $0.flushSecurityAssociations(on: node) }
    }

    /// An operator flushes `node`'s policies by hand (`ip xfrm policy flush`): ours and foreign.
    public func flushPolicies(on node: String) {
        withState { $0.flushPolicies(on: node) }
    }

    /// An operator deletes one policy of `node` by hand (`ip xfrm policy delete`), whatever its
    /// reqid; false when the node holds no such policy.
    @discardableResult
    public func deletePolicyByHand(_ identifier: PolicyIdentifier, on node: String) -> Bool {
        withState { $0.apply(.deletePolicy(identifier), on: node) == .applied }
    }

    /// Sends one packet; see `SimulatedFleetState.send(from:to:transport:sourcePort:destinationPort:)`.
    public func send(
        from node: String, to destination: IPAddress, transport: TransportProtocol = .udp,
        sourcePort: UInt16? = nil, destinationPort: UInt16? = nil
    ) -> PacketOutcome {
        withState {
            $0.send(
                from: node, to: destination, transport: transport, sourcePort: sourcePort,
                destinationPort: destinationPort)
        }
    }
}
