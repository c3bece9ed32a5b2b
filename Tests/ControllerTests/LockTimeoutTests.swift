import Foundation
import Logging
import MeshwardTestKit
import Store
import Synchronization
import Testing

@testable import Controller
@testable import Reconciler
@testable import ReconcilerTestSupport

/// `apply --lock-timeout` on the controller's injected clock: while another controller holds
/// the lease, apply waits (the clock jumps through its sleeps), saying who holds it, and runs
/// only once the lease is free; when the timeout passes first it fails naming the holder.
@Suite("Apply waits for the lease")
struct LockTimeoutTests {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    final class Fixture: Sendable {
        let directory: URL
        let state: URL
        /// Runs a test's hook at the start of its next sleep (`onNextSleep`), so that the test
        /// can act while apply waits.
        let clock: ManualClock
        let other: any ControllerStore
        let controller: MeshwardController
        let waits = Mutex<[LeaseWait]>([])

        init(logger: Logger) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-lock-\(UUID())")
            state = directory.appendingPathComponent("state")
            clock = ManualClock()
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            other = try StateStore.open(directory: state.path, logger: logger)
            controller = MeshwardController(stateDirectory: state.path, logger: logger, clock: clock)
        }

        func apply(timeout: Duration) async throws -> ApplyDocument {
            let intent = try FleetSpec.pair().compile()
            return try await controller.apply(
                intent, source: "fleet.yaml", waitForDrain: false, lockTimeout: timeout,
                onLeaseWait: { wait in self.waits.withLock { $0.append(wait) } })
        }

        func remove() { try? FileManager.default.removeItem(at: directory) }
    }

    @Test("apply waits while another controller holds the lease, says who, and runs once it is released")
    func waitsUntilReleased() async throws {
        let fixture = try Fixture(logger: logger)
        defer { fixture.remove() }
        let theirs = try await fixture.other.acquireLease(
            holder: "db-host pid 7", ttl: .seconds(3_600), now: fixture.clock.now())
        let sentWhileWaiting = Mutex<Int?>(nil)
        let other = fixture.other
        let store: any ControllerStore = try StateStore.open(directory: fixture.state.path, logger: logger)
        fixture.clock.onNextSleep {
            // Apply is waiting: it has recorded no channel (so sent no kernel operation) yet.
            let channels = try await store.loadChannels()
            sentWhileWaiting.withLock { $0 = channels.count }
            try await other.releaseLease(holder: "db-host pid 7")
        }
        let document = try await fixture.apply(timeout: .seconds(60))

        #expect(document.outcome == .converged || document.outcome == .waitingForDrain)
        #expect(sentWhileWaiting.withLock { $0 } == 0, "apply recorded channels while the other controller led")
        let waits = fixture.waits.withLock { $0 }
        #expect(waits.count == 1)
        #expect(waits.first?.holder == "db-host pid 7")
        #expect(waits.first?.epoch == theirs.epoch)
        #expect(waits.first?.expiresAt == theirs.expiresAt)
        #expect(waits.first?.timeout == .seconds(60))
        // Apply gave its own lease back; the epoch moved on past the other controller's.
        #expect(try await store.currentLease() == nil)
        let next = try await store.acquireLease(holder: "later", ttl: .seconds(10), now: fixture.clock.now())
        #expect(next.epoch > theirs.epoch + 1)
    }

    @Test("apply waits out a lease its holder stops renewing and runs under the next epoch")
    func waitsOutAnExpiringLease() async throws {
        let fixture = try Fixture(logger: logger)
        defer { fixture.remove() }
        let start = fixture.clock.now()
        let theirs = try await fixture.other.acquireLease(holder: "db-host pid 7", ttl: .seconds(25), now: start)
        let document = try await fixture.apply(timeout: .seconds(60))

        #expect(document.outcome == .converged || document.outcome == .waitingForDrain)
        #expect(fixture.waits.withLock { $0.map(\.holder) } == ["db-host pid 7"])
        // It ran only once the other lease had lapsed, on the controller's clock.
        #expect(fixture.clock.now() >= theirs.expiresAt)
        let revisions = try await fixture.other.revisions(limit: nil)
        #expect(revisions.count == 1)
        #expect(try #require(revisions.first).appliedAt >= theirs.expiresAt)
    }

    @Test("apply gives up when the timeout passes first, naming the holder, its epoch and expiry; nothing changed")
    func timesOutNamingTheHolder() async throws {
        let fixture = try Fixture(logger: logger)
        defer { fixture.remove() }
        let start = fixture.clock.now()
        let theirs = try await fixture.other.acquireLease(holder: "db-host pid 7", ttl: .seconds(3_600), now: start)
        do {
            _ = try await fixture.apply(timeout: .seconds(45))
            Issue.record("apply ran while another controller held the lease")
        } catch ControllerError.leaseWaitTimedOut(let wait, let waited) {
            #expect(wait.holder == "db-host pid 7")
            #expect(wait.epoch == theirs.epoch)
            #expect(waited == 45)
            let message = ControllerError.leaseWaitTimedOut(wait, waited: waited).description
            #expect(message.contains("held by 'db-host pid 7' (epoch \(theirs.epoch), expires "))
            #expect(message.contains("waited 45s for it (--lock-timeout 45s) and nothing was changed"))
        }
        #expect(fixture.clock.now() == start.addingTimeInterval(45))
        #expect(try await fixture.other.loadChannels().isEmpty)
        #expect(try await fixture.other.currentLease()?.holder == "db-host pid 7")
    }

    @Test("a zero lock timeout refuses at once, as before, without sleeping")
    func zeroTimeoutRefusesAtOnce() async throws {
        let fixture = try Fixture(logger: logger)
        defer { fixture.remove() }
        try await fixture.other.acquireLease(holder: "db-host pid 7", ttl: .seconds(3_600), now: fixture.clock.now())
        await #expect(throws: StoreError.self) { try await fixture.apply(timeout: .zero) }
        #expect(fixture.clock.sleepsStarted == 0)
        #expect(fixture.waits.withLock { $0 }.isEmpty)
    }
}
