import Foundation
import Logging
import Synchronization
import Testing

@testable import Reconciler

/// The reconcile loop on an injected clock: tests move time instead of sleeping.
@Suite("Reconcile service")
struct ReconcileServiceTests {
    /// A clock whose sleeps wait until the test moves it past their deadline.
    final class SteppedClock: ReconcilerClock {
        /// Told each time a sleep starts.
        let events: LoopEvents

        init(events: LoopEvents) {
            self.events = events
        }

        private struct State {
            var now = Date(timeIntervalSince1970: 1_800_000_000)
            var sleepers: [(deadline: Date, continuation: CheckedContinuation<Void, any Error>)] = []
        }

        private let state = Mutex(State())

        func now() -> Date { state.withLock { $0.now } }

        /// How many sleeps wait right now.
        var sleeping: Int { state.withLock { $0.sleepers.count } }

        func advance(by interval: TimeInterval) {
            let woken = state.withLock { state in
                state.now = state.now.addingTimeInterval(interval)
                let now = state.now
                let due = state.sleepers.filter { $0.deadline <= now }
                state.sleepers.removeAll { $0.deadline <= now }
                return due
            }
            for sleeper in woken { sleeper.continuation.resume() }
        }

        func sleep(until deadline: Date) async throws {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let due = state.withLock { state -> Bool in
                        if deadline <= state.now { return true }
                        state.sleepers.append((deadline, continuation))
                        return false
                    }
                    if due { continuation.resume() } else { events.changed() }
                }
            } onCancel: {
                let cancelled = state.withLock { state in
                    let waiting = state.sleepers.filter { $0.deadline == deadline }
                    state.sleepers.removeAll { $0.deadline == deadline }
                    return waiting
                }
                for sleeper in cancelled { sleeper.continuation.resume(throwing: CancellationError()) }
            }
        }
    }

    @Test(
        "the loop waits its interval on its clock, and a reload starts the next cycle at once", .timeLimit(.minutes(5)))
    func intervalAndReload() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-loop-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let spec = directory.appendingPathComponent("fleet.yaml")
        try PlannerReviewTests.pair().yaml.write(to: spec, atomically: true, encoding: .utf8)
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let events = LoopEvents()
        let clock = SteppedClock(events: events)
        let reload = ReloadTrigger()
        let cycles = Mutex(0)
        let service = ReconcileService(
            controller: MeshwardController(
                stateDirectory: directory.appendingPathComponent("state").path, logger: logger),
            specPaths: [spec.path], interval: .seconds(3_600), once: false, reload: reload, clock: clock,
            logger: logger,
            onCycle: { _ in
                cycles.withLock { $0 += 1 }
                events.changed()
            })
        let loop = Task { try await service.run() }
        defer { loop.cancel() }

        // Waits for what the loop does next, woken by its events (a cycle ended, a sleep
        // started): no real-time bound, which a loaded machine would break.
        func settle(until condition: @escaping @Sendable () -> Bool) async { await events.wait(until: condition) }
        await settle { cycles.withLock { $0 } == 1 && clock.sleeping == 1 }
        #expect(cycles.withLock { $0 } == 1, "the first cycle runs at once")

        // Most of the interval passes on the clock: no cycle.
        clock.advance(by: 3_599)
        try await Task.sleep(for: .milliseconds(300))
        #expect(cycles.withLock { $0 } == 1, "no cycle before the interval")

        // A reload wakes it without any time passing.
        reload.fire("test reload")
        await settle { cycles.withLock { $0 } == 2 && clock.sleeping == 1 }
        #expect(cycles.withLock { $0 } == 2)

        // A whole interval from that cycle: the next one.
        clock.advance(by: 3_600)
        await settle { cycles.withLock { $0 } == 3 }
        #expect(cycles.withLock { $0 } == 3)
    }
}

/// What the loop under test did, for a test to wait on: each change wakes the waiters whose
/// condition now holds.
final class LoopEvents: Sendable {
    private let waiters = Mutex<[(condition: @Sendable () -> Bool, continuation: CheckedContinuation<Void, Never>)]>([])

    /// Returns once `condition` holds; checked now and after every change.
    func wait(until condition: @escaping @Sendable () -> Bool) async {
        await withCheckedContinuation { continuation in
            let holds = waiters.withLock { waiters -> Bool in
                if condition() { return true }
                waiters.append((condition, continuation))
                return false
            }
            if holds { continuation.resume() }
        }
    }

    /// Something happened: wakes every waiter whose condition holds now.
    func changed() {
        let woken = waiters.withLock { waiters -> [CheckedContinuation<Void, Never>] in
            let ready = waiters.filter { $0.condition() }
            waiters.removeAll { $0.condition() }
            return ready.map(\.continuation)
        }
        for continuation in woken { continuation.resume() }
    }
}
