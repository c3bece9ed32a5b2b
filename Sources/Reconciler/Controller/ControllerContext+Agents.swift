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
        return AgentConnector(
            credentials: credentials, cluster: cluster, addresses: addresses, epoch: { fixedEpoch },
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
}
