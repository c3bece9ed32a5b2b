import Agent
import DesiredState
import Foundation
import MeshwardCore
import Store

extension MeshwardController {
    /// `meshward agent credentials`: a ready agent directory for `node` of the spec, issued by
    /// the cluster CA (created and sealed in the Store on first use).
    public func writeAgentCredentials(
        _ intent: FleetIntent, node: String, to directory: AgentDirectory
    ) async throws -> AgentCredentials {
        guard let spec = intent.node(named: node) else {
            throw ControllerError.unknownNode(node, known: intent.nodes.map(\.name).sorted())
        }
        let store = try await context.openStore()
        try Self.refuseOtherCluster(
            intent, recorded: try await ControllerSettings.load(from: store)?.cluster, directory: stateDirectory)
        let credentials = try await ClusterCredentials(store: store, cluster: intent.cluster)
            .agent(node: node, addresses: spec.addresses, now: clock.now())
        try directory.prepare()
        try directory.writeCredentials(credentials)
        return credentials
    }
}
