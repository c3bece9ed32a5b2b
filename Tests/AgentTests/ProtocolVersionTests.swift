import Agent
import AgentTestSupport
import AgentWire
import Foundation
import Identity
import Kernel
import KernelSimulator
import MeshwardCore
import Testing

/// Two releases that speak different agent wire versions say so, naming both versions, instead
/// of misreading each other.
@Suite("the agent wire version")
struct ProtocolVersionTests {
    static let newer = WireCodec.protocolVersion + 1

    @Test(
        "an agent refuses a controller that announces a wire version it does not speak, naming both versions, and applies nothing"
    )
    func agentRefusesNewerController() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(nodes: ["a"], connector: SimulatedConnector(fleet: fleet))
        defer { Task { await agents.stop() } }
        let controller = try AgentKernel(
            node: "a", host: "127.0.0.1", port: UInt16(try #require(agents.ports["a"])), reqid: .meshwardDefault,
            credentials: agents.controller, cluster: agents.cluster, epoch: { 1 }, executor: agents.executor,
            protocolVersion: Self.newer, logger: InProcessAgents.quietLogger)
        let wording =
            "agent of node a refused the request: the controller speaks agent wire version \(Self.newer), "
            + "this agent speaks version \(WireCodec.protocolVersion), and they cannot talk"
        let observed = await AgentFixtures.errorText { _ = try await controller.observe() }
        #expect(observed.contains(wording), "\(observed)")
        let sa = AgentFixtures.association(spi: 0x1000, key: try AgentFixtures.key())
        let applied = await AgentFixtures.errorText { _ = try await controller.apply([.addSA(sa)]) }
        #expect(applied.contains(wording), "\(applied)")
        #expect(fleet.state.nodes["a"]?.securityAssociations.isEmpty == true)
    }

    @Test(
        "a controller refuses an agent that answers in a wire version it does not speak, naming both versions; an apply's outcome is then unknown"
    )
    func controllerRefusesNewerAgent() async throws {
        let fleet = AgentFixtures.fleet()
        let ca = try ClusterCA.create(cluster: "test", now: Date())
        let credentials = try AgentCredentials(
            ca: ca, issued: ca.issue(for: .node(cluster: "test", name: "a"), now: Date(), validity: .seconds(3600)))
        let controllerCredentials = try AgentCredentials(
            ca: ca, issued: ca.issue(for: .controller(cluster: "test"), now: Date(), validity: .seconds(3600)))
        // A newer agent that still serves requests of this controller's version, but answers in its own.
        let server = try AgentServer(
            credentials: credentials, host: "127.0.0.1", port: 0, connector: SimulatedConnector(fleet: fleet),
            endpoint: .sim, directory: nil, protocolVersion: Self.newer,
            acceptedProtocolVersions: [WireCodec.protocolVersion, Self.newer], executor: ThreadTaskExecutor.shared,
            logger: InProcessAgents.quietLogger)
        let serving = Task(executorPreference: ThreadTaskExecutor.shared) { try? await server.run() }
        defer {
            server.shutdown()
            serving.cancel()
        }
        let port = try await server.listeningPort()
        let controller = try AgentKernel(
            node: "a", host: "127.0.0.1", port: UInt16(port), reqid: .meshwardDefault,
            credentials: controllerCredentials, cluster: "test", epoch: { 1 }, executor: ThreadTaskExecutor.shared,
            logger: InProcessAgents.quietLogger)
        let wording =
            "the agent of node a answered in agent wire version \(Self.newer), this controller speaks version "
            + "\(WireCodec.protocolVersion), and they cannot talk"
        let observed = await AgentFixtures.errorText { _ = try await controller.observe() }
        #expect(observed.contains(wording), "\(observed)")
        let sa = AgentFixtures.association(spi: 0x1000, key: try AgentFixtures.key())
        let outcomes = try await controller.apply([.addSA(sa)]).map(\.outcome)
        #expect(outcomes.count == 1)
        guard case .indeterminate(let reason) = outcomes.first else {
            Issue.record("the apply's outcome was \(outcomes), not unknown")
            return
        }
        #expect(reason.contains(wording), "\(reason)")
    }
}
