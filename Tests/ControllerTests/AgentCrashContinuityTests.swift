import Testing

@testable import Reconciler

/// The crash suite once more with every node behind an in-process agent (real gRPC and mutual
/// TLS on loopback, the agents serving the harness's simulated fleet): a controller killed at
/// any point of a phase, and a new one dialling the agents afresh, keep continuity around the
/// crash and converge.
@Suite("Crash continuity behind agents")
struct AgentCrashContinuityTests {
    @Test(
        "with every node behind an agent, killed before the first and after every operation of a phase, continuity holds around the crash",
        arguments: CrashContinuityTests.Phase.allCases)
    func everyCrashPoint(phase: CrashContinuityTests.Phase) async throws {
        let seed: UInt64 = phase == .creation ? 21 : 22
        let (total, _) = try await CrashContinuityTests.cleanRun(phase, seed: seed)
        #expect(total > 10)
        try await CrashContinuityTests.crashAndRestart(
            phase, at: .beforeFirstOperation, seed: seed, throughAgents: true)
        for count in 1...total {
            try await CrashContinuityTests.crashAndRestart(
                phase, at: .afterApplied(count), seed: seed, throughAgents: true)
        }
        print("crash continuity behind agents, \(phase): killed before the first and after each of \(total) operations")
    }

    @Test(
        "with every node behind an agent, killed right after each node refuses an operation, continuity holds around the crash",
        arguments: CrashContinuityTests.Phase.allCases)
    func afterRefusal(phase: CrashContinuityTests.Phase) async throws {
        let seed: UInt64 = phase == .creation ? 23 : 24
        let (_, nodes) = try await CrashContinuityTests.cleanRun(phase, seed: seed)
        #expect(nodes.count == 3)
        for node in nodes {
            for nth in [1, 2] {
                try await CrashContinuityTests.crashAndRestart(
                    phase, at: .afterRefusal(node: node, nth: nth), seed: seed, throughAgents: true)
            }
        }
    }
}
