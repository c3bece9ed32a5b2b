import Foundation
import Logging
import MeshwardTestKit
import Store
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
}
