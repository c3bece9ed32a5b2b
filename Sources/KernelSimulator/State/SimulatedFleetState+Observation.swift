import Kernel
import MeshwardCore

extension SimulatedFleetState {
    /// What `node`'s owner of `reqid` sees: its own SAs (keys as fingerprints, with counters)
    /// and policies, each in the order they were installed, the SPIs of foreign SAs, and the node's statistics.
    /// Throws `KernelError.unreachable` for an unknown or unreachable node.
    public func observe(node: String, reqid: Reqid) throws -> NodeObservation {
        try Self.observe(nodes[node], named: node, reqid: reqid)
    }

    /// `observe(node:reqid:)` of a node's record taken from the state (nil: the fleet has no
    /// such node). A record is a value: it can be observed after the lock it was read under is
    /// released, while the fleet goes on.
    static func observe(_ record: SimulatedNode?, named node: String, reqid: Reqid) throws -> NodeObservation {
        guard let record else {
            throw KernelError.unreachable(node: node, reason: "the simulated fleet has no node named \(node)")
        }
        guard record.isReachable else {
            throw KernelError.unreachable(node: node, reason: "the simulated node is not answering")
        }
        // Sorting cheap keys, not the reported values: comparing and moving whole selectors
        // costs ten times the rest of an observation.
        var owned: [(order: UInt64, identifier: SAIdentifier)] = []
        var foreign: Set<SAIdentifier> = []
        owned.reserveCapacity(record.securityAssociationDatabase.count)
        for (identifier, association) in record.securityAssociationDatabase {
            if association.reqid == reqid {
                owned.append((association.insertionOrder, identifier))
            } else {
                foreign.insert(identifier)
            }
        }
        owned.sort { $0.order < $1.order }
        let associations = owned.compactMap { record.securityAssociationDatabase[$0.identifier]?.reported }
        var ownedPolicies: [(order: UInt64, identifier: PolicyIdentifier)] = []
        ownedPolicies.reserveCapacity(record.policyDatabase.count)
        for (identifier, policy) in record.policyDatabase where policy.templateReqid == reqid {
            ownedPolicies.append((policy.insertionOrder, identifier))
        }
        ownedPolicies.sort { $0.order < $1.order }
        let policies = ownedPolicies.compactMap { record.policyDatabase[$0.identifier]?.reported }
        return NodeObservation(
            securityAssociations: associations, policies: policies,
            statistics: record.statistics, foreignSPIs: foreign
        )
    }
}
