import Foundation
import Logging
import MeshwardTestKit
import Store
import Testing

@testable import Reconciler

@Suite("Lease keeper")
struct LeaseKeeperTests {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    func temporaryStore() throws -> (StateStore, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-keeper-\(UUID())")
        return (try StateStore.open(directory: directory.path, logger: logger), directory)
    }

    @Test("a kept lease is renewed under one epoch; another controller is refused while it is kept")
    func renewsAndExcludes() throws {
        let (store, directory) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualClock()
        let keeper = LeaseKeeper(store: store, holder: "ctl-a", ttl: .seconds(60), clock: clock, logger: logger)
        let first = try keeper.acquire()

        // Two turns of the loop, each a third of the TTL apart: same epoch, later expiry.
        clock.advance(by: 20)
        keeper.keepOnce()
        clock.advance(by: 20)
        keeper.keepOnce()
        let renewed = try #require(keeper.lease)
        #expect(renewed.epoch == first.epoch)
        #expect(renewed.expiresAt == clock.now().addingTimeInterval(60))

        // Past the first lease's expiry, but the keeper renewed it: another controller waits.
        let other = try StateStore.open(directory: directory.path, logger: logger)
        #expect(throws: StoreError.self) {
            try other.acquireLease(holder: "ctl-b", ttl: .seconds(60), now: first.expiresAt.addingTimeInterval(1))
        }
    }

    @Test("a keeper whose lease was taken over writes nothing, and takes the lease again once it is free")
    func deposedKeeperStopsThenLeadsAgain() throws {
        let (store, directory) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualClock()
        let keeper = LeaseKeeper(store: store, holder: "ctl-a", ttl: .seconds(30), clock: clock, logger: logger)
        let first = try keeper.acquire()

        // The keeper stalls past its TTL; another controller takes the lease.
        let other = try StateStore.open(directory: directory.path, logger: logger)
        let theirs = try other.acquireLease(holder: "ctl-b", ttl: .seconds(30), now: clock.now().addingTimeInterval(31))
        #expect(theirs.epoch > first.epoch)
        clock.advance(by: 32)

        // Its next turn finds the lease gone: it holds none, its fence refuses, its writes fail.
        keeper.keepOnce()
        #expect(keeper.lease == nil)
        #expect(throws: StoreError.self) { try keeper.confirm(at: clock.now()) }
        #expect(throws: StoreError.self) {
            try store.recordRevision(hash: "h", source: "s", summary: "", at: clock.now())
        }

        // While the other holds it, turns only wait; once it is released, the keeper leads again.
        keeper.keepOnce()
        #expect(keeper.lease == nil)
        try other.releaseLease(holder: "ctl-b")
        keeper.keepOnce()
        let again = try #require(keeper.lease)
        #expect(again.epoch > theirs.epoch)
        #expect(try store.currentLease()?.holder == "ctl-a")
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
        #expect(try store.currentLease()?.holder == "ctl-a", "the service did not take the free lease")
        run.cancel()
        try await run.value
        #expect(try store.currentLease() == nil)
    }
}
