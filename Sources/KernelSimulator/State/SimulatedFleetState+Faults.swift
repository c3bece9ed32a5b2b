import Kernel
import MeshwardCore

extension SimulatedFleetState {
    /// Makes the `nth` operation that reaches `node` from now on (1 for the next) fail with
    /// `errno` and have no effect. Several failures may be pending at once.
    public mutating func failOperation(on node: String, nth: Int, errno: Int32) {
        guard nth >= 1, let received = nodes[node]?.faults.operationsReceived else { return }
        nodes[node]?.faults.failures.append(.init(operation: received + UInt64(nth), errno: errno))
    }

    /// Makes `node`'s kernel reachable or not. An unreachable node refuses observation and
    /// operations; its packets still flow. Making it reachable clears a pending `stopAnswering`.
    public mutating func setReachable(_ node: String, _ reachable: Bool) {
        nodes[node]?.isReachable = reachable
        if reachable { nodes[node]?.faults.answersLeft = nil }
    }

    /// Lets `node` answer `count` more operations, then makes it unreachable: in a batch, the
    /// operations after the `count`th are `.notAttempted`. With 0 it stops answering at once.
    public mutating func stopAnswering(on node: String, afterOperations count: Int) {
        guard nodes[node] != nil else { return }
        if count <= 0 {
            nodes[node]?.isReachable = false
            nodes[node]?.faults.answersLeft = nil
        } else {
            nodes[node]?.faults.answersLeft = count
        }
    }
}

extension SimulatedFleetState {
    /// Drops every failure still scheduled on `node` and any pending `stopAnswering`; the node's
    /// reachability stays as it is.
    public mutating func clearFaults(on node: String) {
        nodes[node]?.faults.failures = []
        nodes[node]?.faults.answersLeft = nil
    }
}

extension SimulatedFleetState {
    /// An operator's `ip xfrm state flush` on `node`: every SA, ours and foreign, is gone.
    public mutating func flushSecurityAssociations(on node: String) {
        nodes[node]?.securityAssociationDatabase = [:]
    }

    /// An operator's `ip xfrm policy flush` on `node`: every policy, ours and foreign, is gone.
    public mutating func flushPolicies(on node: String) {
        nodes[node]?.policyDatabase = [:]
    }
}
