import Agent
import DesiredState
import Foundation
import Identity
import Kernel
import MeshwardCore
import Reconciler
import Store

extension MeshwardController {
    /// `meshward agent token`: a new one-time join token for `node` of the spec, valid for
    /// `ttl`. The Store keeps its verifier (SHA-256 of the secret), never the secret; the token
    /// returned is the only copy of it. The cluster CA is made on first use, as for
    /// `agent credentials`.
    ///
    /// Throws `ControllerError.unknownNode` for a node the spec lacks and
    /// `EnrollmentError.notAnAgent` for one whose endpoint is not an agent.
    public func issueJoinToken(_ intent: FleetIntent, node: String, ttl: Duration) async throws -> JoinToken {
        guard let spec = intent.node(named: node) else {
            throw ControllerError.unknownNode(node, known: intent.nodes.map(\.name).sorted())
        }
        guard case .agent = spec.endpoint else {
            throw EnrollmentError.notAnAgent(node: node, endpoint: spec.endpoint.description)
        }
        let store = try await openJoinTokenStore(intent)
        let now = clock.now()
        let ca = try await ClusterCredentials(store: store, cluster: intent.cluster).certificateAuthority(now: now)
        let token = try JoinToken.generate(pinning: ca.certificate)
        try await store.createJoinToken(
            NewJoinToken(
                id: token.id, node: node, verifier: token.verifier, expiresAt: now.addingTimeInterval(ttl.seconds)),
            now: now)
        return token
    }

    /// `meshward agent tokens`: every token neither spent nor revoked, oldest first.
    public func unspentJoinTokens(_ intent: FleetIntent) async throws -> [JoinTokenSummary] {
        try await openJoinTokenStore(intent).unspentJoinTokens()
    }

    /// `meshward agent revoke-token`: revokes the unspent token `id`; `JoinTokenError` when it is
    /// unknown, spent or revoked already.
    public func revokeJoinToken(_ intent: FleetIntent, id: String) async throws {
        try await openJoinTokenStore(intent).revokeJoinToken(id: id, now: clock.now())
    }

    /// The Store, refused when it belongs to another cluster than the spec's.
    private func openJoinTokenStore(_ intent: FleetIntent) async throws -> any ControllerStore {
        let store = try await context.openStore()
        try Self.refuseOtherCluster(
            intent, recorded: try await ControllerSettings.load(from: store)?.cluster, directory: stateDirectory)
        return store
    }
}

extension MeshwardController {
    /// `meshward agent boot-guard`: the boot guard list of `node` as its agent would keep it once
    /// every channel of the spec is in place: one entry for each selector of each channel from
    /// `node` that enforces ESP, with the spec's reqid and Meshward's policy priority. A host that
    /// joins by token installs it before it is enrolled (`JoinBootGuard`), so its applications
    /// never put plaintext on the wire toward a peer that will require ESP. Read from the spec
    /// alone: no Store, no key, no SPI.
    public static func bootGuardList(_ intent: FleetIntent, node: String) throws -> [BootGuardEntry] {
        guard let spec = intent.node(named: node) else {
            throw ControllerError.unknownNode(node, known: intent.nodes.map(\.name).sorted())
        }
        guard case .agent = spec.endpoint else {
            throw EnrollmentError.notAnAgent(node: node, endpoint: spec.endpoint.description)
        }
        let reqid = Reqid(intent.reqid)
        return intent.channels.filter { $0.id.from == node && $0.enforcement == .required }.flatMap { channel in
            channel.traffic.map { traffic in
                BootGuardEntry(
                    reqid: reqid, local: IPPrefix(host: channel.source), peer: IPPrefix(host: channel.destination),
                    traffic: traffic, priority: SecurityPolicy.defaultPriority)
            }
        }.sorted()
    }
}
