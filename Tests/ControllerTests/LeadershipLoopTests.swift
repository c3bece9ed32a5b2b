import Foundation
import KernelSimulator
import Logging
import MeshwardTestKit
import Store
import Synchronization
import Testing

@testable import Controller
@testable import Reconciler
@testable import ReconcilerTestSupport

/// Two reconcile loops on one Store, each with its lease keeper, on one stepped clock: only the
/// one that leads runs cycles; the other stands by without a failed cycle and takes over when
/// the lease comes free.
@Suite("Reconcile loops and leadership")
struct LeadershipLoopTests {

    /// One controller of the pair: its loop, its keeper, and what it did.
    struct Member {
        let keeper: LeaseKeeper
        let service: ReconcileService
        let recorder: RecordingRecorder
        let log: CollectingLogHandler.Lines
        /// The cycles that ran, as `onCycle` saw them: a document, or nil for an error.
        let cycles: Cycles
        /// Cycles that returned a document.
        var succeeded: Int { cycles.withLock { $0.compactMap { $0 }.count } }
    }

    /// The cycles a loop ran, as `onCycle` saw them.
    final class Cycles: Sendable {
        private let documents = Mutex<[ApplyDocument?]>([])

        func withLock<T>(_ body: (inout [ApplyDocument?]) -> T) -> T { documents.withLock { body(&$0) } }
    }

    /// A state directory with the pair's spec and its simulated fleet, every node reachable.
    static func fleet() throws -> (directory: URL, state: URL, spec: URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-leaders-\(UUID())")
        let state = directory.appendingPathComponent("state")
        try FileManager.default.createDirectory(
            at: state, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let spec = directory.appendingPathComponent("fleet.yaml")
        let pair = FleetSpec.pair()
        try pair.yaml.write(to: spec, atomically: true, encoding: .utf8)
        let fleet = SimulatedFleet()
        let intent = try pair.compile()
        fleet.withState { fleet in
            for node in intent.nodes { fleet.addNode(node.name, addresses: node.addresses) }
        }
        try fleet.save(to: state.appendingPathComponent("simulated-fleet.sqlite"))
        return (directory, state, spec)
    }

    /// A controller named `holder` on `state`, its keeper's lease 15 s, its loop's interval an hour.
    static func member(
        _ holder: String, state: URL, spec: URL, clock: ManualClock, reload: ReloadTrigger, events: LoopEvents
    ) async throws -> Member {
        let lines = CollectingLogHandler.Lines(events: events)
        let logger = Logger(label: holder, factory: { _ in CollectingLogHandler(lines: lines) })
        let recorder = RecordingRecorder(events: events)
        let controller = MeshwardController(
            stateDirectory: state.path, logger: logger, clock: clock, recorder: recorder)
        let keeper = LeaseKeeper(
            store: try await controller.context.openStore(), holder: holder, ttl: .seconds(15), clock: clock,
            sleeper: clock, timer: clock, recorder: recorder, logger: logger)
        let cycles = Cycles()
        let service = ReconcileService(
            controller: controller, specPaths: [spec.path], interval: .seconds(3_600), once: false, reload: reload,
            clock: clock, logger: logger, lease: keeper, recorder: recorder,
            onCycle: { result in
                cycles.withLock { $0.append(try? result.get()) }
                events.changed()
            })
        return Member(keeper: keeper, service: service, recorder: recorder, log: lines, cycles: cycles)
    }

    @Test(
        "while one loop leads, the other runs no pass, logs no failed cycle and reports standby; when the leader's keeper gives the lease back, the standby takes it at its next turn and runs a cycle at once",
        .timeLimit(.minutes(5)))
    func standbyTakesOverWhenTheLeaderReleases() async throws {
        let (directory, state, spec) = try Self.fleet()
        defer { try? FileManager.default.removeItem(at: directory) }
        let events = LoopEvents()
        let clock = ReconcileServiceTests.steppedClock(events)
        let leader = try await Self.member(
            "ctl-a", state: state, spec: spec, clock: clock, reload: ReloadTrigger(), events: events)
        let standby = try await Self.member(
            "ctl-b", state: state, spec: spec, clock: clock, reload: ReloadTrigger(), events: events)

        // The first keeper takes the lease before the second starts.
        let leaderKeeper = Task { try await leader.keeper.run() }
        defer { leaderKeeper.cancel() }
        await events.wait { leader.keeper.role.isLeading }
        let standbyKeeper = Task { try await standby.keeper.run() }
        defer { standbyKeeper.cancel() }
        let loops = [Task { try await leader.service.run() }, Task { try await standby.service.run() }]
        defer { for loop in loops { loop.cancel() } }

        await events.wait {
            leader.succeeded >= 1 && standby.recorder.cycles.contains(.standby)
                && standby.log.contains("standing by: another controller holds the lease")
        }
        #expect(leader.cycles.withLock { $0.count } == 1)
        #expect(leader.cycles.withLock { $0.first }??.outcome == .converged)

        // Turns pass: the leader renews and the standby still stands by. Each step waits for
        // both keepers and both loops to sleep, so that no turn is left behind the clock.
        for _ in 0..<3 {
            await events.wait { clock.sleeping == 4 }
            let renewals = leader.recorder.leases.count
            clock.advance(by: 5)
            await events.wait { leader.recorder.leases.count > renewals }
        }
        await events.wait { clock.sleeping == 4 }
        #expect(leader.keeper.role.isLeading)
        guard case .standby(holder: "ctl-a", _) = standby.keeper.role else {
            Issue.record("the standby's role is \(standby.keeper.role)")
            return
        }
        #expect(standby.cycles.withLock { $0.isEmpty }, "the standby ran a cycle")
        #expect(standby.recorder.passes == 0, "the standby ran a pass")
        #expect(!standby.log.contains("cycle failed"), "\(standby.log.all)")
        #expect(Set(standby.recorder.cycles) == [.standby])
        #expect(
            standby.log.all.filter { $0.contains("standing by: another controller holds the lease") }.count == 1,
            "announced once: \(standby.log.all)")

        // The leader's keeper stops and gives the lease back: the standby's next turn takes it
        // and its loop runs a cycle without waiting for its interval.
        leaderKeeper.cancel()
        _ = try? await leaderKeeper.value
        #expect(leader.keeper.role == .idle)
        await events.wait { clock.sleeping == 3 }
        clock.advance(by: 5)
        await events.wait { standby.succeeded >= 1 }
        #expect(standby.keeper.role.isLeading)
        #expect(standby.recorder.cycles.last == .converged)
        #expect(standby.recorder.passes >= 1)
        #expect(standby.log.contains("leading: holds the lease"))
        #expect(!standby.log.contains("cycle failed"), "\(standby.log.all)")
        #expect(try await standby.keeper.store.currentLease()?.holder == "ctl-b")
    }

    @Test(
        "a standby takes a lease its holder stopped renewing right after it lapses, runs a cycle at once, and the old leader's next cycle finds the lease gone and stands by without a failed cycle",
        .timeLimit(.minutes(5)))
    func standbyTakesOverALapsedLease() async throws {
        let (directory, state, spec) = try Self.fleet()
        defer { try? FileManager.default.removeItem(at: directory) }
        let events = LoopEvents()
        let clock = ReconcileServiceTests.steppedClock(events)
        let leaderReload = ReloadTrigger()
        let leader = try await Self.member(
            "ctl-a", state: state, spec: spec, clock: clock, reload: leaderReload, events: events)
        let standby = try await Self.member(
            "ctl-b", state: state, spec: spec, clock: clock, reload: ReloadTrigger(), events: events)

        // The leader takes the lease once and never renews it (a keeper that hangs).
        let first = try await leader.keeper.acquire()
        let leaderLoop = Task { try await leader.service.run() }
        defer { leaderLoop.cancel() }
        await events.wait { leader.succeeded >= 1 && clock.sleeping == 1 }
        // The standby starts 2 s later, so that its turns (every 5 s) fall between the lapses.
        clock.advance(by: 2)
        let standbyKeeper = Task { try await standby.keeper.run() }
        defer { standbyKeeper.cancel() }
        let standbyLoop = Task { try await standby.service.run() }
        defer { standbyLoop.cancel() }
        await events.wait { standby.recorder.cycles.contains(.standby) }

        // Its cycle renewed the lease at the clock's time, which has not moved. The standby's
        // turns come every 5 s, and the one that would pass the lapse comes right after it
        // instead (the lapse plus the margin). Each step moves the clock to the next sleep's deadline (the standby keeper's
        // turn; the loops wait an hour) once both loops and the keeper sleep.
        let expires = try #require(try await standby.keeper.store.currentLease()).expiresAt
        #expect(expires == first.expiresAt)
        var turns = 0
        while !standby.keeper.role.isLeading, turns < 10 {
            await events.wait { clock.sleeping == 3 }
            let before = standby.recorder.leases.count
            let next = try #require(clock.nextDeadline)
            clock.advance(by: next.timeIntervalSince(clock.now()))
            await events.wait { standby.recorder.leases.count > before }
            turns += 1
        }
        let taken = clock.now().timeIntervalSince(expires)
        #expect(abs(taken - 0.25) < 0.001, "taken \(taken) s after the lapse; the margin is 0.25 s, a turn 5 s")
        #expect(turns == 3, "turns after the first at 2 s: 7 s, 12 s, then 15.25 s, not 17 s: \(turns)")
        await events.wait { standby.succeeded >= 1 }
        #expect(standby.keeper.role.isLeading)
        #expect(standby.recorder.cycles.last == .converged)

        // The old leader still thinks it leads; its next cycle finds the lease held and stands by.
        #expect(leader.keeper.role.isLeading)
        leaderReload.fire("test reload")
        await events.wait { leader.recorder.cycles.last == .standby && !leader.keeper.role.isLeading }
        #expect(leader.cycles.withLock { $0.count } == 1, "the deposed leader reported a cycle")
        #expect(!leader.log.contains("cycle failed"), "\(leader.log.all)")
        #expect(leader.log.contains("the cycle stopped: this controller no longer holds the lease"))
        #expect(leader.recorder.leases.last == .standby(holder: "ctl-b"))
    }

    @Test("a wait to lead returns at once for a leader, and for a standby once its keeper's turn takes the free lease")
    func waitUntilLeading() async throws {
        let (directory, state, spec) = try Self.fleet()
        defer { try? FileManager.default.removeItem(at: directory) }
        let events = LoopEvents()
        let clock = ReconcileServiceTests.steppedClock(events)
        let first = try await Self.member(
            "ctl-a", state: state, spec: spec, clock: clock, reload: ReloadTrigger(), events: events)
        let second = try await Self.member(
            "ctl-b", state: state, spec: spec, clock: clock, reload: ReloadTrigger(), events: events)
        try await first.keeper.acquire()
        await first.keeper.waitUntilLeading()
        await second.keeper.keepOnce()
        #expect(second.keeper.role.isLeading == false)
        let woken = Mutex(false)
        let waiting = Task {
            await second.keeper.waitUntilLeading()
            woken.withLock { $0 = true }
            events.changed()
        }
        await first.keeper.release()
        await second.keeper.keepOnce()
        await events.wait { woken.withLock { $0 } }
        await waiting.value
        #expect(second.keeper.role.isLeading)
    }
}
