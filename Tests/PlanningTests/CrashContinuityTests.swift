import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

/// The controller dies in the middle of a phase and a new one takes over the same Store and
/// kernels: continuity holds in every state the dead controller's passes could reach (the state
/// it died in among them) and in every state the new controller's passes can reach, and the
/// fleet converges. `CrashRecoveryTests` does the same with real processes and SIGKILL's status,
/// checking the state the crash left; this suite checks every state around it.
@Suite("Crash continuity")
struct CrashContinuityTests {
    @Test(
        "killed before the first and after every operation of a phase, continuity holds around the crash",
        arguments: CrashContinuity.Phase.allCases)
    func everyCrashPoint(phase: CrashContinuity.Phase) async throws {
        let seed: UInt64 = phase == .creation ? 21 : 22
        let (total, _) = try await CrashContinuity.cleanRun(phase, seed: seed)
        #expect(total > 10)
        try await CrashContinuity.crashAndRestart(phase, at: .beforeFirstOperation, seed: seed)
        for count in 1...total {
            try await CrashContinuity.crashAndRestart(phase, at: .afterApplied(count), seed: seed)
        }
        print("crash continuity, \(phase): killed before the first and after each of \(total) operations")
    }

    @Test(
        "killed right after each node refuses an operation, continuity holds around the crash",
        arguments: CrashContinuity.Phase.allCases)
    func afterRefusal(phase: CrashContinuity.Phase) async throws {
        let seed: UInt64 = phase == .creation ? 23 : 24
        let (_, nodes) = try await CrashContinuity.cleanRun(phase, seed: seed)
        #expect(nodes.count == 3)
        for node in nodes {
            for nth in [1, 2] {
                try await CrashContinuity.crashAndRestart(phase, at: .afterRefusal(node: node, nth: nth), seed: seed)
            }
        }
    }
}
