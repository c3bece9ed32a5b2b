import MeshwardTestKit
import Testing

@testable import Reconciler

/// The crash hook's settings: where `MESHWARD_SIMULATED_CRASH_AFTER` makes the controller die.
@Suite("Simulated crash fault")
struct SimulatedCrashFaultTests {
    @Test(
        "the variable names a crash point, or leaves the fault off",
        arguments: [
            ("0", SimulatedCrashFault.CrashPoint.beforeFirstOperation),
            ("1", .afterApplied(1)),
            ("37", .afterApplied(37)),
            ("refused:1", .afterRefused(1)),
            ("refused:4", .afterRefused(4)),
            ("-1", nil), ("refused:0", nil), ("refused:", nil), ("after:3", nil), ("", nil), ("3x", nil),
        ] as [(String, SimulatedCrashFault.CrashPoint?)])
    func parses(text: String, expected: SimulatedCrashFault.CrashPoint?) {
        #expect(SimulatedCrashFault.CrashPoint(text) == expected, "\(text)")
    }
}
