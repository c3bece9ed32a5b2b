import AgentTestSupport
import DesiredState
import Foundation
import KernelSimulator
import MeshwardCore
import Testing

@testable import Reconciler

/// The controller dies in the middle of a phase and a new one takes over the same Store and
/// kernels: continuity holds in every state the dead controller's passes could reach (the state
/// it died in among them) and in every state the new controller's passes can reach, and the
/// fleet converges. `CrashRecoveryTests` does the same with real processes and SIGKILL's status,
/// checking the state the crash left; this suite checks every state around it.
@Suite("Crash continuity")
struct CrashContinuityTests {
    enum Phase: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case creation, rekey
        var testDescription: String { rawValue }
    }

    /// A harness at the start of `phase` on the three-tier fleet, with the phase's rekey requests.
    /// With `agents`, every node is reached through an in-process agent (real gRPC and mutual TLS
    /// on loopback) serving the harness's fleet; the caller stops them.
    static func start(
        _ phase: Phase, seed: UInt64, throughAgents: Bool = false
    ) async throws -> (
        ContinuityHarness, FleetIntent, [ChannelID: Date], InProcessAgents?
    ) {
        let harness = ContinuityHarness(seed: seed)
        let intent = try ContinuityTests.threeTier.compile()
        harness.provision(intent)
        var agents: InProcessAgents?
        if throughAgents {
            let started = try await InProcessAgents.start(
                nodes: intent.nodes.map(\.name), connector: SimulatedConnector(fleet: harness.fleet))
            harness.routeThroughAgents(AgentFleetKernels(fleet: harness.fleet, agents: started))
            agents = started
        }
        var requests: [ChannelID: Date] = [:]
        if phase == .rekey {
            try await harness.converge(intent)
            harness.clock.advance(by: 1)
            requests = Dictionary(uniqueKeysWithValues: harness.records.keys.map { ($0, harness.clock.now()) })
        }
        return (harness, intent, requests, agents)
    }

    /// Dies at `point`, restarts, converges; every state on the way is checked. With
    /// `throughAgents`, the new controller dials the agents afresh, as a new process would.
    static func crashAndRestart(
        _ phase: Phase, at point: CrashPoint, seed: UInt64, throughAgents: Bool = false
    ) async throws {
        let (harness, intent, requests, agents) = try await start(phase, seed: seed, throughAgents: throughAgents)
        do {
            try await crashAndRestart(
                phase, at: point, harness: harness, intent: intent, requests: requests, agents: agents)
            await agents?.stop()
        } catch {
            await agents?.stop()
            throw error
        }
    }

    private static func crashAndRestart(
        _ phase: Phase, at point: CrashPoint, harness: ContinuityHarness, intent: FleetIntent,
        requests: [ChannelID: Date], agents: InProcessAgents?
    ) async throws {
        harness.armCrash(point)
        do {
            try await harness.converge(intent, rekeyRequests: requests)
            Issue.record("\(phase), killed \(point): the controller never reached its crash point")
            return
        } catch let error as HarnessError where error.message.hasPrefix("the controller crashed") {}
        if let agents { harness.routeThroughAgents(AgentFleetKernels(fleet: harness.fleet, agents: agents)) }
        try harness.restartController()
        try await harness.converge(intent, rekeyRequests: requests)
        #expect(harness.violations == [], "\(phase), killed \(point)")
        try harness.assertConverged(intent)
        #expect(harness.checkedStates == harness.existingStates, "\(phase), killed \(point)")
        if phase == .rekey {
            for id in intent.channels.map(\.id) {
                let active = harness.records[id]?.generations.last { $0.state == .active }
                #expect(active?.number == 2, "\(phase), killed \(point): \(id) was not rotated")
            }
        }
    }

    /// How many operations the phase applies when nothing goes wrong, and which nodes get them.
    static func cleanRun(_ phase: Phase, seed: UInt64) async throws -> (applied: Int, nodes: [String]) {
        let (harness, intent, requests, _) = try await start(phase, seed: seed)
        var applied = 0
        var nodes: Set<String> = []
        try await harness.converge(intent, rekeyRequests: requests) { report in
            for (planned, outcome) in report.results where outcome.isApplied {
                applied += 1
                nodes.insert(planned.node)
            }
        }
        return (applied, nodes.sorted())
    }

    @Test(
        "killed before the first and after every operation of a phase, continuity holds around the crash",
        arguments: Phase.allCases)
    func everyCrashPoint(phase: Phase) async throws {
        let seed: UInt64 = phase == .creation ? 21 : 22
        let (total, _) = try await Self.cleanRun(phase, seed: seed)
        #expect(total > 10)
        try await Self.crashAndRestart(phase, at: .beforeFirstOperation, seed: seed)
        for count in 1...total {
            try await Self.crashAndRestart(phase, at: .afterApplied(count), seed: seed)
        }
        print("crash continuity, \(phase): killed before the first and after each of \(total) operations")
    }

    @Test(
        "killed right after each node refuses an operation, continuity holds around the crash",
        arguments: Phase.allCases)
    func afterRefusal(phase: Phase) async throws {
        let seed: UInt64 = phase == .creation ? 23 : 24
        let (_, nodes) = try await Self.cleanRun(phase, seed: seed)
        #expect(nodes.count == 3)
        for node in nodes {
            for nth in [1, 2] {
                try await Self.crashAndRestart(phase, at: .afterRefusal(node: node, nth: nth), seed: seed)
            }
        }
    }
}
