import Agent
import DesiredState
import Foundation
import Identity
import Kernel
import MeshwardCore
import Reconciler
import Store

extension ControllerContext {
    /// The connector for the fleet's `agent` endpoints over the session's kept connections, with
    /// the controller's credentials from the Store (made on first use); nil when no endpoint is
    /// an agent, so a fleet without agents never creates a CA. The Store's revocation list is
    /// read once for the use and applies to every kept connection's next handshake.
    ///
    /// - Parameters:
    ///   - epoch: the lease epoch every apply carries from now on; 0 for commands that only
    ///     observe, which leave it as it was.
    ///   - enrolls: whether an agent that answers with a provisional certificate is enrolled
    ///     (`EnrollmentAuthority`: spends its token, records its serial); false reports it
    ///     waiting for enrollment (`plan`).
    func agentConnector(
        for endpoints: [String: NodeEndpoint], intent: FleetIntent, store: (any ControllerStore)?, epoch: Int64,
        enrolls: Bool = false
    ) async throws -> AgentPoolConnector? {
        var addresses: [String: IPAddress] = [:]
        for node in intent.nodes {
            if let first = node.addresses.first { addresses[node.name] = first }
        }
        let clock = self.clock
        return try await agentConnector(
            for: endpoints, cluster: intent.cluster, addresses: addresses, store: store, epoch: epoch,
            enrollment: enrolls
                ? store.map { EnrollmentAuthority(store: $0, intent: intent).issuer(now: { clock.now() }) } : nil)
    }

    /// The same, for a command without a spec (`status`): `addresses` are each node's first
    /// address. Without `enrollment`, an agent that serves a provisional certificate is reported
    /// waiting for enrollment. `credentials` replaces the Store's controller credentials (the
    /// lost-Store guard's, when the Store holds no CA).
    func agentConnector(
        for endpoints: [String: NodeEndpoint], cluster: String, addresses: [String: IPAddress],
        store: (any ControllerStore)?, epoch: Int64, enrollment: (any EnrollmentIssuer)? = nil,
        credentials given: AgentCredentials? = nil
    ) async throws -> AgentPoolConnector? {
        guard endpoints.values.contains(where: { $0.scheme == .agent }), let store else { return nil }
        let credentials: AgentCredentials
        if let given {
            credentials = given
        } else {
            credentials = try await ClusterCredentials(store: store, cluster: cluster).controller(now: clock.now())
        }
        let revocations: Result<RevocationList, any Error>
        do {
            revocations = .success(try await ClusterCredentials.revocationList(from: store))
        } catch {
            revocations = .failure(error)
        }
        if epoch > 0 { session.agents.lead(epoch: UInt64(epoch)) }
        return session.agents.use(
            credentials: credentials, cluster: cluster, addresses: addresses, revocations: revocations,
            enrollment: enrollment)
    }

    /// After a run in which every channel is established (converged, or only drains left),
    /// tells each agent so for the boot its last observation reported; the agent then reports
    /// ready (sd_notify, `meshward agent wait-ready`). A node whose mark fails is logged and
    /// marked by a later run.
    func markAgentsReady(after report: ConvergeReport, endpoints: [String: NodeEndpoint]) async {
        guard report.outcome != .blocked, let last = report.last else { return }
        let agentNodes = endpoints.filter { $0.value.scheme == .agent }.keys
        let logger = self.logger
        await withTaskGroup(of: Void.self) { group in
            for node in agentNodes {
                guard let boot = last.observations[node]?.bootID, let kernel = session.agents.link(for: node) else {
                    continue
                }
                group.addTask {
                    do {
                        let taken = try await kernel.markReady(bootID: boot, deadline: .now + .seconds(10))
                        if !taken {
                            logger.notice("agent booted again since its observation", metadata: ["node": "\(node)"])
                        }
                    } catch {
                        logger.warning(
                            "could not mark the agent ready", metadata: ["node": "\(node)", "error": "\(error)"])
                    }
                }
            }
        }
    }

    /// Renews the certificate of every agent this run reached whose certificate (as it presented
    /// it in the handshake) is past half its life by the controller's clock: a new key on the
    /// agent, a certificate from the cluster CA for the spec's addresses and
    /// `defaults.certificates.lifetime`, recorded in the Store. The old certificate serves until
    /// the agent confirmed the new one. A renewal that fails is logged and tried again by the
    /// next run; it never fails the run. Returns the nodes renewed, with their new expiry.
    @discardableResult
    func renewAgentCertificates(
        after report: ConvergeReport, endpoints: [String: NodeEndpoint], intent: FleetIntent,
        store: any ControllerStore
    ) async -> [String: Date] {
        guard let last = report.last else { return [:] }
        let now = clock.now()
        var due: [(any AgentLink, [IPAddress])] = []
        for (node, endpoint) in endpoints.sorted(by: { $0.key < $1.key }) where endpoint.scheme == .agent {
            guard last.observations[node] != nil, let spec = intent.node(named: node),
                let kernel = session.agents.link(for: node),
                let validity = kernel.certificateValidity, now >= ClusterCredentials.halfLife(of: validity)
            else { continue }
            due.append((kernel, spec.addresses))
        }
        guard !due.isEmpty else { return [:] }
        let cluster = intent.cluster
        let lifetime = intent.certificateLifetime
        let logger = self.logger
        return await withTaskGroup(of: (String, Date?).self) { group in
            for (kernel, addresses) in due {
                group.addTask {
                    do {
                        let expires = try await kernel.renewCertificate(deadline: .now + Self.renewalTimeout) { csr in
                            try await ClusterCredentials(store: store, cluster: cluster).renewAgent(
                                node: kernel.node, csrDER: csr, addresses: addresses, now: now, validity: lifetime)
                        }
                        logger.notice(
                            "renewed the certificate of a node's agent",
                            metadata: [
                                "node": "\(kernel.node)", "expires": "\(ISO8601DateFormatter().string(from: expires))",
                            ])
                        return (kernel.node, expires)
                    } catch {
                        logger.warning(
                            "could not renew the certificate of a node's agent",
                            metadata: ["node": "\(kernel.node)", "error": "\(error)"])
                        return (kernel.node, nil)
                    }
                }
            }
            var renewed: [String: Date] = [:]
            for await (node, expires) in group {
                if let expires { renewed[node] = expires }
            }
            return renewed
        }
    }

    /// How long one agent's renewal (both calls and the issue between them) may take.
    static let renewalTimeout: Duration = .seconds(10)
}
