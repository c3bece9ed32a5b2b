import Foundation
import Logging
import MeshwardTestKit
import Store
import Synchronization
import Testing

@testable import Controller
@testable import Reconciler
@testable import ReconcilerTestSupport

@Suite("Lease keeper")
struct LeaseKeeperTests {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    func temporaryStore() throws -> (any ControllerStore, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-keeper-\(UUID())")
        return (try StateStore.open(directory: directory.path, logger: logger), directory)
    }

    @Test("a kept lease is renewed under one epoch; another controller is refused while it is kept")
    func renewsAndExcludes() async throws {
        let (store, directory) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualClock()
        let keeper = LeaseKeeper(store: store, holder: "ctl-a", ttl: .seconds(60), clock: clock, logger: logger)
        let first = try await keeper.acquire()

        // Two turns of the loop, each a third of the TTL apart: same epoch, later expiry.
        clock.advance(by: 20)
        await keeper.keepOnce()
        clock.advance(by: 20)
        await keeper.keepOnce()
        let renewed = try #require(keeper.lease)
        #expect(renewed.epoch == first.epoch)
        #expect(renewed.expiresAt == clock.now().addingTimeInterval(60))

        // Past the first lease's expiry, but the keeper renewed it: another controller waits.
        let other: any ControllerStore = try StateStore.open(directory: directory.path, logger: logger)
        await #expect(throws: StoreError.self) {
            try await other.acquireLease(holder: "ctl-b", ttl: .seconds(60), now: first.expiresAt.addingTimeInterval(1))
        }
    }

    @Test("a keeper whose lease was taken over writes nothing, and takes the lease again once it is free")
    func deposedKeeperStopsThenLeadsAgain() async throws {
        let (store, directory) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualClock()
        let keeper = LeaseKeeper(store: store, holder: "ctl-a", ttl: .seconds(30), clock: clock, logger: logger)
        let first = try await keeper.acquire()

        // The keeper stalls past its TTL; another controller takes the lease.
        let other: any ControllerStore = try StateStore.open(directory: directory.path, logger: logger)
        let theirs = try await other.acquireLease(
            holder: "ctl-b", ttl: .seconds(30), now: clock.now().addingTimeInterval(31))
        #expect(theirs.epoch > first.epoch)
        clock.advance(by: 32)

        // Its next turn finds the lease gone: it holds none, its fence refuses, its writes fail.
        await keeper.keepOnce()
        #expect(keeper.lease == nil)
        await #expect(throws: StoreError.self) { try await keeper.confirm(at: clock.now()) }
        await #expect(throws: StoreError.self) {
            try await store.recordRevision(hash: "h", source: "s", summary: "", at: clock.now(), command: nil)
        }

        // While the other holds it, turns only wait; once it is released, the keeper leads again.
        await keeper.keepOnce()
        #expect(keeper.lease == nil)
        try await other.releaseLease(holder: "ctl-b")
        await keeper.keepOnce()
        let again = try #require(keeper.lease)
        #expect(again.epoch > theirs.epoch)
        #expect(try await store.currentLease()?.holder == "ctl-a")
    }

    @Test("a keeper run as a service gives the lease back when it is cancelled", .timeLimit(.minutes(2)))
    func releasesWhenStopped() async throws {
        let (store, directory) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let keeper = LeaseKeeper(
            store: store, holder: "ctl-a", ttl: .seconds(60), clock: SystemClock(), logger: logger)
        let run = Task { try await keeper.run() }
        await keeper.waitUntilLeading()
        #expect(try await store.currentLease()?.holder == "ctl-a", "the service did not take the free lease")
        run.cancel()
        try await run.value
        #expect(try await store.currentLease() == nil)
    }

    @Test("a keeper run as a service renews every third of its TTL, each renewal pushing the expiry a TTL ahead")
    func renewsAtAThirdOfTheTTL() async throws {
        let (store, directory) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = Mutex<Task<Void, any Error>?>(nil)
        let keeperBox = Mutex<LeaseKeeper?>(nil)
        // Per turn: the time left on the lease right after the turn, and its epoch.
        let turns = Mutex<[(left: TimeInterval, epoch: Int64)]>([])
        // One clock for the lease's times and the keeper's turns: each sleep jumps to its deadline.
        let clock = ManualClock(onSleep: { count, now in
            if let lease = keeperBox.withLock({ $0 })?.lease {
                turns.withLock { $0.append((lease.expiresAt.timeIntervalSince(now), lease.epoch)) }
            }
            if count >= 6 { run.withLock { $0?.cancel() } }
        })
        let keeper = LeaseKeeper(
            store: store, holder: "ctl-a", ttl: .seconds(45), clock: clock, timer: clock, logger: logger)
        keeperBox.withLock { $0 = keeper }
        let task = Task { try await keeper.run() }
        run.withLock { $0 = task }
        try await task.value

        let intervals = clock.sleepLengths
        #expect(intervals.count >= 6)
        #expect(intervals.allSatisfy { $0 == 15 }, "sleeps between turns: \(intervals)")
        let seen = turns.withLock { $0 }
        #expect(seen.count >= 6)
        #expect(seen.allSatisfy { $0.left == 45 }, "time left after each turn: \(seen.map(\.left))")
        #expect(Set(seen.map(\.epoch)).count == 1, "the keeper held one epoch across its renewals")
        #expect(try await store.currentLease() == nil, "the keeper gave the lease back when it stopped")
    }
}

/// A one-shot run's lease, renewed beside the run (`LeaseKeeper.whileRenewing`) on the keeper's
/// timer, which the tests step. Those that run a keeper on the wall clock wait for its role to
/// change (`waitUntilLeading`), bounded by their time limit: in a full `swift test` on two
/// loaded cores the shared pool can leave a waiting task unscheduled for more than 10 s.
@Suite("Lease renewed beside a one-shot run")
struct LeaseWhileRenewingTests {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test(
        "while a one-shot run goes on, its lease is renewed on the keeper's timer under the same epoch without a pass confirming it, and no longer once the run returned",
        .timeLimit(.minutes(2)))
    func renewsBesideTheRun() async throws {
        let (store, directory) = try LeaseKeeperTests().temporaryStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualClock()
        let events = LoopEvents()
        let timer = ReconcileServiceTests.steppedClock(events)
        let keeper = LeaseKeeper(
            store: store, holder: "ctl-a", ttl: .seconds(30), clock: clock, timer: timer, logger: logger)
        let first = try await keeper.acquire()
        let renewed = try await keeper.whileRenewing {
            await events.wait { timer.sleeping == 1 }
            #expect(timer.sleepLengths == [10], "the renewal waits a third of the TTL")
            // The controller's clock moves on; only a renewal moves the expiry with it.
            clock.advance(by: 60)
            timer.advance(by: 10)
            await events.wait { timer.sleepLengths.count == 2 && timer.sleeping == 1 }
            return try await store.currentLease()
        }
        #expect(renewed?.expiresAt == clock.now().addingTimeInterval(30), "renewed at the controller's time")
        #expect(renewed?.epoch == first.epoch)
        await events.wait { timer.sleeping == 0 }
        #expect(timer.sleeping == 0, "the renewal still waits after the run returned")
    }

    @Test(
        "a run whose lease another controller took over stops renewing it and holds no lease, so its next pass's fence refuses",
        .timeLimit(.minutes(2)))
    func stopsWhenTakenOver() async throws {
        let (store, directory) = try LeaseKeeperTests().temporaryStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualClock()
        let events = LoopEvents()
        let timer = ReconcileServiceTests.steppedClock(events)
        let recorder = RecordingRecorder(events: events)
        let keeper = LeaseKeeper(
            store: store, holder: "ctl-a", ttl: .seconds(30), clock: clock, timer: timer, recorder: recorder,
            logger: logger)
        let first = try await keeper.acquire()
        let other: any ControllerStore = try StateStore.open(directory: directory.path, logger: logger)
        try await keeper.whileRenewing {
            clock.advance(by: 60)
            let theirs = try await other.acquireLease(holder: "ctl-b", ttl: .seconds(60), now: clock.now())
            #expect(theirs.epoch > first.epoch)
            await events.wait { timer.sleeping == 1 }
            timer.advance(by: 10)
            await events.wait { recorder.leases.last == .standby(holder: "ctl-b") }
            // The renewing ended: it waits for no further turn.
            await events.wait { timer.sleeping == 0 }
            #expect(timer.sleepLengths.count == 1)
        }
        #expect(keeper.lease == nil)
        #expect(keeper.role == .lost(to: "ctl-b"))
        await #expect(throws: StoreError.self) { _ = try await keeper.confirm(at: clock.now()) }
        #expect(try await store.currentLease()?.holder == "ctl-b")
    }

    @Test(
        "a one-shot apply holds a lease of the loop's TTL (15 s), whatever the drain, during its passes, and releases it at the end"
    )
    func oneShotApplyLease() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-oneshot-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let state = directory.appendingPathComponent("state").path
        let clock = ManualClock()
        let controller = MeshwardController(stateDirectory: state, logger: logger, clock: clock)
        var spec = FleetSpec.threeTier
        spec.drain = "60s"
        let intent = try spec.compile()
        let seen = Mutex<[TimeInterval]>([])
        let logger = self.logger
        _ = try await controller.apply(
            intent, source: "fleet.yaml", waitForDrain: false,
            onPass: { _ in
                do {
                    let store: any ControllerStore = try StateStore.open(directory: state, logger: logger)
                    guard let lease = try await store.currentLease() else {
                        Issue.record("no lease is held during a pass")
                        return
                    }
                    seen.withLock { $0.append(lease.expiresAt.timeIntervalSince(clock.now())) }
                } catch {
                    Issue.record("cannot read the lease: \(error)")
                }
            })
        let remaining = seen.withLock { $0 }
        #expect(!remaining.isEmpty)
        #expect(remaining.allSatisfy { $0 > 0 && $0 <= LeaseKeeper.loopTTL.timeInterval }, "\(remaining)")
        let store: any ControllerStore = try StateStore.open(directory: state, logger: logger)
        #expect(try await store.currentLease() == nil, "the lease is released")
    }

    @Test(
        "a standby whose turn is 100 s takes a lapsed lease right after the expiry it saw, not at its next turn",
        .timeLimit(.minutes(2)))
    func standbyWakesAtTheLapse() async throws {
        let (store, directory) = try LeaseKeeperTests().temporaryStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        // A holder that takes a 1 s lease and never renews it: a leader that died.
        let other: any ControllerStore = try StateStore.open(directory: directory.path, logger: logger)
        _ = try await other.acquireLease(holder: "ctl-dead", ttl: .seconds(1), now: Date())
        let standby = LeaseKeeper(
            store: store, holder: "ctl-standby", ttl: .seconds(300), clock: SystemClock(), logger: logger)
        let started = ContinuousClock.now
        let running = Task { try await standby.run() }
        await standby.waitUntilLeading()
        let waited = ContinuousClock.now - started
        #expect(standby.lease != nil)
        running.cancel()
        _ = try? await running.value
        #expect(waited < .seconds(100), "the standby took the lapsed lease only at its next turn, \(waited)")
        print("standby took the lease \(waited) after it started; the lease lapsed 1 s after it was taken")
    }
}
