import Kernel
import MeshwardCore

extension SimulatedFleetState {
    /// The objects of `node` that carry `reqid`, as a watch reports them (keys as fingerprints,
    /// no counters); none for an unknown node. Reads the node whether or not it is reachable.
    public func watchedObjects(node: String, reqid: Reqid) -> WatchedObjects {
        guard let record = nodes[node] else { return WatchedObjects() }
        return WatchedObjects(
            securityAssociations: record.securityAssociationDatabase.values.filter { $0.reqid == reqid }.map(
                \.reported),
            policies: record.policyDatabase.values.filter { $0.templateReqid == reqid }.map(\.reported))
    }
}
