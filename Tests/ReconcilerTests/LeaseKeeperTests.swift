import Foundation
import Logging
import MeshwardTestKit
import Store
import Synchronization
import Testing

@testable import Reconciler

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

    @Test("a keeper run as a service gives the lease back when it is cancelled")
    func releasesWhenStopped() async throws {
        let (store, directory) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let keeper = LeaseKeeper(
            store: store, holder: "ctl-a", ttl: .seconds(60), clock: SystemClock(), logger: logger)
        let run = Task { try await keeper.run() }
        let giveUp = ContinuousClock.now + .seconds(60)
        while keeper.lease == nil, ContinuousClock.now < giveUp { try await Task.sleep(for: .milliseconds(10)) }
        #expect(try await store.currentLease()?.holder == "ctl-a", "the service did not take the free lease")
        run.cancel()
        try await run.value
        #expect(try await store.currentLease() == nil)
    }

    /// A sleeper that records how far ahead each sleep aims, calls `onSleep` with the count so
    /// far (the test looks at the lease, and cancels the keeper, from there), then moves its
    /// time to the deadline at once.
    final class RecordingSleeper: ReconcilerClock {
        let manual: ManualClock
        let intervals = Mutex<[TimeInterval]>([])
        let onSleep: @Sendable (Int) -> Void

        init(_ manual: ManualClock, onSleep: @escaping @Sendable (Int) -> Void) {
            self.manual = manual
            self.onSleep = onSleep
        }

        func now() -> Date { manual.now() }

        func sleep(until deadline: Date) async throws {
            let count = intervals.withLock { intervals in
                intervals.append(deadline.timeIntervalSince(manual.now()))
                return intervals.count
            }
            onSleep(count)
            try await manual.sleep(until: deadline)
        }
    }

    @Test("a keeper run as a service renews every third of its TTL, each renewal pushing the expiry a TTL ahead")
    func renewsAtAThirdOfTheTTL() async throws {
        let (store, directory) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualClock()
        let run = Mutex<Task<Void, any Error>?>(nil)
        let keeperBox = Mutex<LeaseKeeper?>(nil)
        // Per turn: the time left on the lease right after the turn, and its epoch.
        let turns = Mutex<[(left: TimeInterval, epoch: Int64)]>([])
        let sleeper = RecordingSleeper(clock) { count in
            if let lease = keeperBox.withLock({ $0 })?.lease {
                turns.withLock { $0.append((lease.expiresAt.timeIntervalSince(clock.now()), lease.epoch)) }
            }
            if count >= 6 { run.withLock { $0?.cancel() } }
        }
        let keeper = LeaseKeeper(
            store: store, holder: "ctl-a", ttl: .seconds(45), clock: clock, sleeper: sleeper, logger: logger)
        keeperBox.withLock { $0 = keeper }
        let task = Task { try await keeper.run() }
        run.withLock { $0 = task }
        try await task.value

        let intervals = sleeper.intervals.withLock { $0 }
        #expect(intervals.count >= 6)
        #expect(intervals.allSatisfy { $0 == 15 }, "sleeps between turns: \(intervals)")
        let seen = turns.withLock { $0 }
        #expect(seen.count >= 6)
        #expect(seen.allSatisfy { $0.left == 45 }, "time left after each turn: \(seen.map(\.left))")
        #expect(Set(seen.map(\.epoch)).count == 1, "the keeper held one epoch across its renewals")
        #expect(try await store.currentLease() == nil, "the keeper gave the lease back when it stopped")
    }
}
