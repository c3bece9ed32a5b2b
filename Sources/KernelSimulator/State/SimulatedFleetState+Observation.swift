import Kernel
import MeshwardCore

extension SimulatedFleetState {
    /// What `node`'s owner of `reqid` sees: its own SAs (keys as fingerprints, with counters)
    /// and policies, sorted by identifier, the SPIs of foreign SAs, and the node's statistics.
    /// Throws `KernelError.unreachable` for an unknown or unreachable node.
    public func observe(node: String, reqid: Reqid) throws -> NodeObservation {
        guard let record = nodes[node] else {
            throw KernelError.unreachable(node: node, reason: "the simulated fleet has no node named \(node)")
        }
        guard record.isReachable else {
            throw KernelError.unreachable(node: node, reason: "the simulated node is not answering")
        }
        var associations: [SecurityAssociation] = []
        var foreign: Set<SAIdentifier> = []
        associations.reserveCapacity(record.securityAssociationDatabase.count)
        for (identifier, association) in record.securityAssociationDatabase {
            if association.reqid == reqid {
                associations.append(association.reported)
            } else {
                foreign.insert(identifier)
            }
        }
        associations.sort { $0.identifier < $1.identifier }
        var policies: [SecurityPolicy] = []
        policies.reserveCapacity(record.policyDatabase.count)
        for policy in record.policyDatabase.values where policy.templateReqid == reqid {
            policies.append(policy.reported)
        }
        policies.sort { $0.identifier < $1.identifier }
        return NodeObservation(
            securityAssociations: associations, policies: policies,
            statistics: record.statistics, foreignSPIs: foreign
        )
    }
}
