import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Synchronization
import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

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

    @Test(
        "a batch that never answers is indeterminate for every operation once the reconciler's clock passes its deadline, and not before, while the other node's batch is applied",
        .timeLimit(.minutes(1)))
    func batchGivenUpOnTheClock() async throws {
        let intent = try FleetSpec.pair().compile()
        let fleet = SimulatedFleet()
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
        let events = LoopEvents()
        let hanging = AppliesThenHangs(fleet.kernel(for: "n1", reqid: .meshwardDefault), events: events)
        defer { hanging.gate.open() }
        let clock = ManualClock(onChange: { events.changed() })
        let started = clock.now()
        let store = ScratchGenerationStore(channels: [:])
        let reconciler = FleetReconciler(
            store: store, kernels: GatedKernels(fleet: fleet, replacing: ["n1": hanging]), reqid: .meshwardDefault,
            clock: clock, logger: Self.logger)
        let reported = Mutex(false)
        let passing = Task {
            var records: [ChannelID: ChannelRecord] = [:]
            let report = try await reconciler.runPass(number: 1, intent: intent, records: &records)
            reported.withLock { $0 = true }
            return report
        }

        // Two observations and two batches watched their deadline; every one but n1's batch
        // ended, and n1's kernel took its batch without answering.
        await events.wait { hanging.held == 1 && clock.watchesStarted == 4 && clock.watching == 1 }
        #expect(clock.nextWatchDeadline == started.addingTimeInterval(FleetReconciler.batchTimeout.timeInterval))
        #expect(fleet.state.nodes["n2"]?.securityAssociations.isEmpty == false, "n2's batch waited for n1's")
        clock.advance(by: 4.5)
        #expect(clock.watching == 1, "n1's batch was given up before its deadline")
        #expect(!reported.withLock { $0 })

        clock.advance(by: 1)
        let report = try await passing.value
        let n1 = report.results.filter { $0.planned.node == "n1" }
        let n2 = report.results.filter { $0.planned.node == "n2" }
        #expect(!n1.isEmpty && !n2.isEmpty)
        let reason = "node n1 did not answer before its deadline of 5 s for one batch; the next observation decides"
        #expect(n1.allSatisfy { $0.outcome == .indeterminate(reason: reason) }, "\(n1.map(\.outcome))")
        #expect(n2.allSatisfy { $0.outcome == .applied }, "\(n2.map(\.outcome))")
        // What n1 was sent took effect: reporting it not attempted would have been a lie.
        #expect(fleet.state.nodes["n1"]?.securityAssociations.isEmpty == false)
        let journaled = store.journal.filter { $0.node == "n1" }
        #expect(journaled.count == n1.count)
        #expect(journaled.allSatisfy { $0.result == .indeterminate(reason: reason) && $0.appliedAt == nil })
    }
}

/// A simulated node whose batches take effect and then never answer while `gate` is closed,
/// whatever their deadline or cancellation say; each batch held tells `events`.
final class AppliesThenHangs: NodeKernel {
    let inner: SimulatedKernel
    let gate = TestGate()
    private let events: LoopEvents
    private let holding = Mutex(0)

    init(_ inner: SimulatedKernel, events: LoopEvents) {
        self.inner = inner
        self.events = events
    }

    var node: String { inner.node }
    var reqid: Reqid { inner.reqid }
    /// How many batches took effect and wait on the gate, or did.
    var held: Int { holding.withLock { $0 } }

    func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
        try await inner.observe(deadline: deadline)
    }

    func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult] {
        let results = try await inner.apply(operations, deadline: deadline)
        holding.withLock { $0 += 1 }
        events.changed()
        await gate.wait()
        return results
    }
}
