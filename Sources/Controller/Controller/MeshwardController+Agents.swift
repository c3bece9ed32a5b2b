import Agent
import DesiredState
import Foundation
import MeshwardCore
import Reconciler
import Store

extension MeshwardController {
    /// `meshward agent credentials`: a ready agent directory for `node` of the spec, issued by
    /// the cluster CA (created and sealed in the Store on first use), valid for the spec's
    /// `defaults.certificates.lifetime`.
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
            .agent(node: node, addresses: spec.addresses, now: clock.now(), validity: intent.certificateLifetime)
        try directory.prepare()
        try directory.writeCredentials(credentials)
        return credentials
    }

    /// `meshward agent revoke --node NAME`: revokes every certificate issued to `node` of the
    /// spec that is not revoked yet, and returns those it revoked. From then on the controller
    /// refuses the node's agent, treats it as gone for its peers (the next apply or reconcile
    /// removes their side make-before-break) and never dials it.
    public func revokeAgent(_ intent: FleetIntent, node: String, reason: String) async throws -> [RevokedCertificate] {
        guard intent.node(named: node) != nil else {
            throw ControllerError.unknownNode(node, known: intent.nodes.map(\.name).sorted())
        }
        let store = try await context.openStore()
        try Self.refuseOtherCluster(
            intent, recorded: try await ControllerSettings.load(from: store)?.cluster, directory: stateDirectory)
        let revoked = try await store.revokeCertificates(ofNode: node, reason: reason, now: clock.now())
        context.logger.notice(
            "revoked the certificates of a node", metadata: ["node": "\(node)", "certificates": "\(revoked.count)"])
        return revoked
    }
}
