import Foundation
import KernelSimulator
import Logging
import MeshwardTestKit
import Synchronization
import Testing

@testable import Controller
@testable import Reconciler
@testable import ReconcilerTestSupport

/// The reconcile loop on an injected clock: tests move time instead of sleeping.
@Suite("Reconcile service")
struct ReconcileServiceTests {
    /// The test kit's clock whose sleeps wait until the test moves it past their deadline,
    /// telling `events` each time a sleep starts waiting or is cancelled.
    static func steppedClock(_ events: LoopEvents) -> ManualClock {
        ManualClock(sleeps: .wait, onChange: { events.changed() })
    }

    @Test(
        "the loop waits its interval on its clock, and a reload starts the next cycle at once", .timeLimit(.minutes(5)))
    func intervalAndReload() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-loop-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let spec = directory.appendingPathComponent("fleet.yaml")
        try FleetSpec.pair().yaml.write(to: spec, atomically: true, encoding: .utf8)
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let events = LoopEvents()
        let clock = Self.steppedClock(events)
        let reload = ReloadTrigger()
        let cycles = Mutex(0)
        let outcomes = Mutex<[String]>([])
        let service = ReconcileService(
            controller: MeshwardController(
                stateDirectory: directory.appendingPathComponent("state").path, logger: logger),
            specPaths: [spec.path], interval: .seconds(3_600), once: false, reload: reload, clock: clock,
            logger: logger,
            onCycle: { result in
                let outcome: String
                switch result {
                case .success(let document):
                    outcome = "\(document.outcome.rawValue), unreachable: \(document.unreachable.map(\.node))"
                case .failure(let error): outcome = "failed: \(error)"
                }
                outcomes.withLock { $0.append(outcome) }
                cycles.withLock { $0 += 1 }
                events.changed()
            })
        let loop = Task { try await service.run() }
        defer { loop.cancel() }

        // Waits for what the loop does next, woken by its events (a cycle ended, a sleep
        // started): no real-time bound, which a loaded machine would break. Each wait accepts
        // more cycles than expected so that a loop that ran too many fails the expectation
        // after it instead of waiting for a count that has passed.
        func settle(until condition: @escaping @Sendable () -> Bool) async { await events.wait(until: condition) }
        await settle { cycles.withLock { $0 } >= 1 && clock.sleeping == 1 }
        #expect(cycles.withLock { $0 } == 1, "the first cycle runs at once")

        // On a loaded machine the first apply can stop before any kernel change because its
        // lease would lapse during a batch; the loop then backs off (1 s, 2 s, …) on its clock.
        // Those back-offs are moved through here, so that the interval is measured from the
        // first cycle that converged. Any other outcome fails.
        var base = 1
        while let last = outcomes.withLock({ $0.last }), last.hasPrefix("failed: stopped before changing any kernel"),
            base < 10
        {
            let backoff = clock.sleepLengths.last ?? 1
            #expect(backoff < 3_600, "a failed cycle backs off for less than the interval")
            clock.advance(by: backoff)
            base += 1
            let next = base
            await settle { cycles.withLock { $0 } >= next && clock.sleeping == 1 }
        }
        #expect(
            outcomes.withLock { $0.last } == "converged, unreachable: []",
            "the cycle converges and reaches every node, so the loop waits its interval: \(outcomes.withLock { $0 })")
        #expect(cycles.withLock { $0 } == base)
        let converged = base

        // Most of the interval passes on the clock: the loop's one sleep is not due, so it is not
        // woken (a cycle needs it woken), and it waits for the interval's end.
        let waitingUntil = try #require(clock.nextDeadline)
        clock.advance(by: 3_599)
        #expect(clock.sleeping == 1 && clock.nextDeadline == waitingUntil, "the loop's sleep was woken early")
        #expect(waitingUntil > clock.now(), "no cycle before the interval")
        #expect(cycles.withLock { $0 } == converged, "no cycle before the interval")

        // A reload wakes it without any time passing.
        reload.fire("test reload")
        await settle { cycles.withLock { $0 } >= converged + 1 && clock.sleeping == 1 }
        #expect(cycles.withLock { $0 } == converged + 1)

        // A whole interval from that cycle: the next one.
        clock.advance(by: 3_600)
        await settle { cycles.withLock { $0 } >= converged + 2 }
        #expect(cycles.withLock { $0 } == converged + 2)
    }
}

extension ReconcileServiceTests {
    @Test(
        "an unreachable node is retried alone after 1 s, 2 s, 4 s, 4 s, and the retry that finds it back restores it long before the interval, with its restore time",
        .timeLimit(.minutes(5)))
    func unreachableNodeRetriedBetweenCycles() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-retry-\(UUID())")
        let state = directory.appendingPathComponent("state")
        try FileManager.default.createDirectory(
            at: state, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: directory) }
        let spec = directory.appendingPathComponent("fleet.yaml")
        let pair = FleetSpec.pair()
        try pair.yaml.write(to: spec, atomically: true, encoding: .utf8)
        let intent = try pair.compile()
        let fleetFile = state.appendingPathComponent("simulated-fleet.sqlite")
        let fleet = SimulatedFleet()
        fleet.withState { fleet in
            for node in intent.nodes { fleet.addNode(node.name, addresses: node.addresses) }
        }
        fleet.setReachable("n2", false)
        try fleet.save(to: fleetFile)

        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let events = LoopEvents()
        let clock = Self.steppedClock(events)
        let documents = Mutex<[ApplyDocument]>([])
        let start = clock.now()
        let service = ReconcileService(
            controller: MeshwardController(stateDirectory: state.path, logger: logger, clock: clock),
            specPaths: [spec.path], interval: .seconds(3_600), once: false, reload: ReloadTrigger(), clock: clock,
            logger: logger,
            onCycle: { result in
                if case .success(let document) = result { documents.withLock { $0.append(document) } }
                events.changed()
            })
        let loop = Task { try await service.run() }
        defer { loop.cancel() }
        func settle(until condition: @escaping @Sendable () -> Bool) async { await events.wait(until: condition) }

        await settle { documents.withLock { $0.count } == 1 && clock.sleeping == 1 }
        let first = try #require(documents.withLock { $0.first })
        #expect(first.outcome == .blocked)
        #expect(first.unreachable.map(\.node) == ["n2"])
        #expect(first.restored == nil)

        // n2 still does not answer: each retry finds it so and the next waits longer, to 4 s.
        for (index, step) in [1.0, 2, 4, 4].enumerated() {
            #expect(clock.sleepLengths.last == step, "retry \(index + 1) after \(clock.sleepLengths)")
            clock.advance(by: step)
            await settle { clock.sleepLengths.count == index + 2 && clock.sleeping == 1 }
        }
        #expect(documents.withLock { $0.count } == 1, "a retry that finds the node still out runs no cycle")

        // n2 answers again: the next retry sees it and the cycle it starts restores it.
        let back = try SimulatedFleet.load(from: fleetFile)
        back.setReachable("n2", true)
        try back.save(to: fleetFile)
        #expect(clock.sleepLengths.last == 4)
        clock.advance(by: 4)
        await settle { documents.withLock { $0.count } == 2 && clock.sleeping == 1 }
        let second = try #require(documents.withLock { $0.last })
        #expect(second.outcome == .converged)
        #expect(second.unreachable.isEmpty)
        #expect(second.restored == [RestoredNode(node: "n2", unreachableSince: start, restoreSeconds: 15)])
        #expect(clock.now().timeIntervalSince(start) == 15, "restored by a retry, not by the 3,600 s interval")
        #expect(clock.sleepLengths.last == 3_600, "with every node reachable the loop waits its interval again")
        let restoredFleet = try SimulatedFleet.load(from: fleetFile).state
        #expect(!(restoredFleet.nodes["n2"]?.securityAssociations.isEmpty ?? true))
    }
}
