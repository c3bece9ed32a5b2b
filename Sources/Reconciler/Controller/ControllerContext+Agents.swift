import Agent
import DesiredState
import Foundation
import Kernel
import MeshwardCore
import Store

extension ControllerContext {
    /// The connector for the fleet's `agent` endpoints, with the controller's credentials from
    /// the Store (made on first use); nil when no endpoint is an agent, so a fleet without agents
    /// never creates a CA. Each connection it makes reads the Store's revocation list afresh.
    ///
    /// - Parameters:
    ///   - epoch: the lease epoch every apply carries; 0 for commands that only observe.
    ///   - enrolls: whether an agent that answers with a provisional certificate is enrolled
    ///     (`EnrollmentAuthority`: spends its token, records its serial); false reports it
    ///     waiting for enrollment (`plan`).
    func agentConnector(
        for endpoints: [String: NodeEndpoint], intent: FleetIntent, store: (any ControllerStore)?, epoch: Int64,
        enrolls: Bool = false
    ) async throws -> (any KernelConnector)? {
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
    /// waiting for enrollment.
    func agentConnector(
        for endpoints: [String: NodeEndpoint], cluster: String, addresses: [String: IPAddress],
        store: (any ControllerStore)?, epoch: Int64, enrollment: (any EnrollmentIssuer)? = nil
    ) async throws -> (any KernelConnector)? {
        guard endpoints.values.contains(where: { $0.scheme == .agent }), let store else { return nil }
        let credentials = try await ClusterCredentials(store: store, cluster: cluster)
            .controller(now: clock.now())
        let fixedEpoch = UInt64(max(0, epoch))
        let clock = self.clock
        return AgentConnector(
            credentials: credentials, cluster: cluster, addresses: addresses, epoch: { fixedEpoch },
            now: { clock.now() },
            revocations: { try await ClusterCredentials.revocationList(from: store) }, enrollment: enrollment,
            logger: logger)
    }

    /// After a run in which every channel is established (converged, or only drains left),
    /// tells each agent so for the boot its last observation reported; the agent then reports
    /// ready (sd_notify, `meshward agent wait-ready`). A node whose mark fails is logged and
    /// marked by a later run.
    func markAgentsReady(
        after report: ConvergeReport, kernels: any FleetKernels, endpoints: [String: NodeEndpoint]
    ) async {
        guard report.outcome != .blocked, let last = report.last else { return }
        let agentNodes = endpoints.filter { $0.value.scheme == .agent }.keys
        let logger = self.logger
        await withTaskGroup(of: Void.self) { group in
            for node in agentNodes {
                guard let boot = last.observations[node]?.bootID else { continue }
                group.addTask {
                    do {
                        guard let kernel = try await kernels.kernel(for: node) as? AgentKernel else { return }
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
        after report: ConvergeReport, kernels: any FleetKernels, endpoints: [String: NodeEndpoint],
        intent: FleetIntent, store: any ControllerStore
    ) async -> [String: Date] {
        guard let last = report.last else { return [:] }
        let now = clock.now()
        var due: [(AgentKernel, [IPAddress])] = []
        for (node, endpoint) in endpoints.sorted(by: { $0.key < $1.key }) where endpoint.scheme == .agent {
            guard last.observations[node] != nil, let spec = intent.node(named: node),
                let kernel = try? await kernels.kernel(for: node) as? AgentKernel,
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
