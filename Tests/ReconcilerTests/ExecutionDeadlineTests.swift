import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Synchronization
import Testing

@testable import Reconciler

/// A pass's deadlines (each node's observation, each node's batch) run on the reconciler's
/// clock: a test moves the clock past them instead of waiting them out, and a call given up is
/// given up exactly when that clock reaches its deadline.
@Suite("Execution deadlines")
struct ExecutionDeadlineTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test(
        "an observation that never answers is reported unreachable with its deadline once the reconciler's clock passes that deadline, and not before",
        .timeLimit(.minutes(1)))
    func observationGivenUpOnTheClock() async throws {
        let fleet = SimulatedFleet()
        fleet.withState { state in
            for node in ["n1", "n2"] { state.addNode(node, addresses: []) }
        }
        let stuck = StuckKernel(node: "n2")
        defer { stuck.gate.open() }
        let events = LoopEvents()
        let clock = ManualClock(onChange: { events.changed() })
        let started = clock.now()
        let reconciler = FleetReconciler(
            store: ScratchGenerationStore(channels: [:]), kernels: GatedKernels(fleet: fleet, replacing: ["n2": stuck]),
            reqid: .meshwardDefault, clock: clock, logger: Self.logger, callTimeout: .seconds(2))
        let reported = Mutex(false)
        let observing = Task {
            let result = await reconciler.observe(["n1", "n2"])
            reported.withLock { $0 = true }
            return result
        }

        // Both observations watch their deadline; n1 answered, so only n2's still waits.
        await events.wait { clock.watchesStarted == 2 && clock.watching == 1 }
        #expect(clock.nextWatchDeadline == started.addingTimeInterval(2))
        clock.advance(by: 1.5)
        // A race that ended stops watching: n2's still watches, so nothing was reported.
        #expect(clock.watching == 1, "n2's observation was given up before its deadline")
        #expect(!reported.withLock { $0 })

        clock.advance(by: 1)
        let (observations, unreachable, _) = await observing.value
        #expect(Array(observations.keys) == ["n1"])
        #expect(unreachable == ["n2": "node n2 did not answer before its deadline of 2 s for one observation"])
    }
}
