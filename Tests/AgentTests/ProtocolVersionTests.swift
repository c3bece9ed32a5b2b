import Agent
import AgentTestSupport
import AgentWire
import Foundation
import Identity
import Kernel
import KernelSimulator
import MeshwardCore
import Testing

/// Two releases that share an agent wire version talk in the newest they share; two that share
/// none say so, naming both, instead of misreading each other.
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
            protocolVersions: Self.newer...Self.newer, logger: InProcessAgents.quietLogger)
        let wording =
            "agent of node a refused the request: the controller speaks agent wire version \(Self.newer), "
            + "this agent speaks versions \(WireCodec.firstProtocolVersion) to \(WireCodec.protocolVersion), and they "
            + "cannot talk"
        let observed = await AgentFixtures.errorText { _ = try await controller.observe() }
        #expect(observed.contains(wording), "\(observed)")
        let sa = AgentFixtures.association(spi: 0x1000, key: try AgentFixtures.key())
        let applied = await AgentFixtures.errorText { _ = try await controller.apply([.addSA(sa)]) }
        #expect(applied.contains(wording), "\(applied)")
        #expect(fleet.state.nodes["a"]?.securityAssociations.isEmpty == true)
    }

    @Test(
        "an agent of a newer release that still speaks this release's newest version answers in it: observe, apply and watch work"
    )
    func newerAgentAnswersInCommonVersion() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet),
            protocolVersions: ["a": WireCodec.protocolVersion...Self.newer])
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        let sa = AgentFixtures.association(spi: 0x1000, key: try AgentFixtures.key())
        let batch = try await kernel.applyReportingPosition([.addSA(sa)], deadline: .now + .seconds(20))
        #expect(batch.results.map(\.outcome) == [.applied])
        #expect(batch.position != nil)
        let observation = try await kernel.observe()
        #expect(observation.securityAssociations.map(\.identifier) == [sa.identifier])
        #expect(observation.watchPosition == batch.position)
        var messages = try #require(kernel.watch(from: nil)).makeAsyncIterator()
        guard case .snapshot(.securityAssociation(let watched)) = try await messages.next() else {
            Issue.record("the watch did not begin with the snapshot of the SA")
            return
        }
        #expect(watched.identifier == sa.identifier)
    }

    @Test(
        "an agent of a newer release that no longer speaks any version of this release refuses its requests, naming both"
    )
    func newerOnlyAgentRefusesController() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), protocolVersions: ["a": Self.newer...Self.newer])
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        let wording =
            "agent of node a refused the request: the controller speaks agent wire versions "
            + "\(WireCodec.firstProtocolVersion) to \(WireCodec.protocolVersion), this agent speaks version \(Self.newer)"
        let observed = await AgentFixtures.errorText { _ = try await kernel.observe() }
        #expect(observed.contains(wording), "\(observed)")
        let sa = AgentFixtures.association(spi: 0x1000, key: try AgentFixtures.key())
        let applied = await AgentFixtures.errorText { _ = try await kernel.apply([.addSA(sa)]) }
        #expect(applied.contains(wording), "\(applied)")
        #expect(fleet.state.nodes["a"]?.securityAssociations.isEmpty == true)
    }

    struct Negotiation: Sendable, CustomTestStringConvertible {
        let oldest: UInt32
        let newest: UInt32
        let spoken: ClosedRange<UInt32>
        let answer: UInt32?
        var testDescription: String {
            "request \(oldest)...\(newest) to an agent of \(spoken): \(answer.map { "answered in \($0)" } ?? "refused")"
        }
    }

    @Test(
        "an agent answers in the newest version both ends speak, reads a request of version 1 without a newest version as version 1, and refuses when they share none",
        arguments: [
            Negotiation(oldest: 1, newest: 2, spoken: 1...2, answer: 2),
            Negotiation(oldest: 1, newest: 0, spoken: 1...2, answer: 1),
            Negotiation(oldest: 1, newest: 2, spoken: 1...1, answer: 1),
            Negotiation(oldest: 2, newest: 2, spoken: 1...1, answer: nil),
            Negotiation(oldest: 1, newest: 2, spoken: 2...3, answer: 2),
            Negotiation(oldest: 1, newest: 2, spoken: 3...3, answer: nil),
            Negotiation(oldest: 3, newest: 3, spoken: 1...2, answer: nil),
        ])
    func negotiation(_ row: Negotiation) {
        #expect(WireCodec.answerVersion(oldest: row.oldest, newest: row.newest, spoken: row.spoken) == row.answer)
    }
}
