import AgentTestSupport
import DesiredState
import KernelSimulator
import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

/// The crash suite once more with every node behind an in-process agent (real gRPC and mutual
/// TLS on loopback, the agents serving the harness's simulated fleet): a controller killed at
/// any point of a phase, and a new one dialling the agents afresh, keep continuity around the
/// crash and converge.
@Suite("Crash continuity behind agents")
struct AgentCrashContinuityTests {
    /// Every node of the harness behind an in-process agent serving its fleet; a controller
    /// started after the crash dials them afresh, as a new process would.
    static func throughAgents(
        _ harness: ContinuityHarness, _ intent: FleetIntent
    ) async throws -> CrashContinuity.Route {
        let agents = try await InProcessAgents.start(
            nodes: intent.nodes.map(\.name), connector: SimulatedConnector(fleet: harness.fleet))
        return CrashContinuity.Route(
            reroute: { harness in harness.routeThroughAgents(AgentFleetKernels(fleet: harness.fleet, agents: agents)) },
            stop: { await agents.stop() })
    }

    @Test(
        "with every node behind an agent, killed before the first and after every operation of a phase, continuity holds around the crash",
        arguments: CrashContinuity.Phase.allCases)
    func everyCrashPoint(phase: CrashContinuity.Phase) async throws {
        let seed: UInt64 = phase == .creation ? 21 : 22
        let (total, _) = try await CrashContinuity.cleanRun(phase, seed: seed)
        #expect(total > 10)
        try await CrashContinuity.crashAndRestart(
            phase, at: .beforeFirstOperation, seed: seed, through: Self.throughAgents)
        for count in 1...total {
            try await CrashContinuity.crashAndRestart(
                phase, at: .afterApplied(count), seed: seed, through: Self.throughAgents)
        }
        print("crash continuity behind agents, \(phase): killed before the first and after each of \(total) operations")
    }

    @Test(
        "with every node behind an agent, killed right after each node refuses an operation, continuity holds around the crash",
        arguments: CrashContinuity.Phase.allCases)
    func afterRefusal(phase: CrashContinuity.Phase) async throws {
        let seed: UInt64 = phase == .creation ? 23 : 24
        let (_, nodes) = try await CrashContinuity.cleanRun(phase, seed: seed)
        #expect(nodes.count == 3)
        for node in nodes {
            for nth in [1, 2] {
                try await CrashContinuity.crashAndRestart(
                    phase, at: .afterRefusal(node: node, nth: nth), seed: seed, through: Self.throughAgents)
            }
        }
    }
}
