import DesiredState
import Foundation
import Kernel
import Logging
import MeshwardCore
import MeshwardTestKit
import MeshwardTestSupport
import Store
import Synchronization
import Testing

@testable import KernelSimulator
@testable import Reconciler
@testable import ReconcilerTestSupport

/// The failure scenarios of the planner review, each reproduced through the simulated fleet:
/// every one of these failed before its fix.
@Suite("Planner review scenarios")
struct PlannerReviewTests {
    static let n1 = IPAddress("198.18.0.11")!
    static let n2 = IPAddress("198.18.0.12")!
    static let n2Moved = IPAddress("198.18.0.52")!
    static let forward = ChannelID(from: "n1", to: "n2", family: .ipv4)

    /// Runs single passes, the clock moving `step` seconds before each, until one has nothing to
    /// do and nothing to wait for (or `limit` passes).
    static func passes(
        _ fixture: PlannerFixture, _ intent: FleetIntent, step: TimeInterval, limit: Int = 80,
        rekeyRequests: [ChannelID: Date] = [:], before: (PlannerFixture) -> Void = { _ in }
    ) async throws {
        for _ in 0..<limit {
            fixture.clock.advance(by: step)
            before(fixture)
            let report = try await fixture.pass(intent, rekeyRequests: rekeyRequests)
            if report.plan.isConverged { return }
        }
        Issue.record("no convergence within \(limit) passes")
    }

    /// When the SA with `spi` left `node` (the start of the pass that deleted it).
    static func deletion(of spi: SPI, on node: String, in fixture: PlannerFixture) -> Date? {
        fixture.applied.first { entry in
            guard entry.planned.node == node, case .deleteSA(let id) = entry.planned.operation else { return false }
            return id.spi == spi
        }?.pass.startedAt
    }

    /// The start of the first pass whose observation shows no policy of `sender` pinning `spi`,
    /// after a pass that did.
    static func switchAway(from spi: SPI, sender: String, in fixture: PlannerFixture) -> Date? {
        var pinnedBefore = false
        for report in fixture.reports {
            guard let observation = report.observations[sender] else { continue }
            let pins = observation.policies.contains { $0.direction == .outbound && $0.template.spi == spi }
            if pins { pinnedBefore = true } else if pinnedBefore { return report.startedAt }
        }
        return nil
    }

    // MARK: 1. Re-addressed while pending

    @Test("1: a receiver re-addressed while a generation is pending gets a new generation and stays encrypted")
    func readdressedWhilePending() async throws {
        let fixture = PlannerFixture()
        let before = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(before) == .converged)
        fixture.clock.advance(by: 1)
        try await fixture.pass(before, rekeyRequests: [Self.forward: fixture.clock.now()])
        let stale = try #require(fixture.records[Self.forward]?.pending, "the rekey left a pending generation")

        let after = try FleetSpec.pair(n2: "198.18.0.52").compile()
        #expect(try await fixture.apply(after) == .converged)
        #expect(try fixture.missingExpectedObjects(after) == [])
        let active = try #require(fixture.records[Self.forward]?.active)
        #expect(active.destination == Self.n2Moved)
        #expect(active.spi != stale.spi, "the pending generation for the old address was superseded")
        guard case .deliveredEncrypted(let spi) = fixture.send(from: "n1", to: Self.n2Moved) else {
            Issue.record("n1 -> n2's new address is not encrypted: \(fixture.send(from: "n1", to: Self.n2Moved))")
            return
        }
        #expect(spi == active.spi)
        for node in ["n1", "n2"] {
            let observation = try fixture.observe(node)
            #expect(!observation.securityAssociations.contains { $0.source == Self.n2 || $0.destination == Self.n2 })
            #expect(!observation.policies.contains { $0.selector.source.address == Self.n2 })
            #expect(!observation.policies.contains { $0.selector.destination.address == Self.n2 })
        }
    }

    /// The general invariant: whatever happens between runs, a run that says converged has every
    /// object of every channel in place. Sampled: random histories of rekeys, re-addressing and
    /// cipher changes interrupted after a random number of passes, with these seeds.
    @Test(
        "1: a run reports converged only with every expected object in place (sampled histories, seeds 1-12)",
        arguments: 1...12)
    func convergedMeansComplete(seed: UInt64) async throws {
        var random = SeededRandom(seed: seed)
        let fixture = PlannerFixture()
        var spec = FleetSpec(
            nodes: (1...3).map { FleetSpec.node($0, ipv6: false) },
            flows: [
                .init(name: "a", from: "n1", to: "n2", ports: [], cipher: nil),
                .init(name: "b", from: "n2", to: "n3", ports: ["tcp/8080"], cipher: nil),
            ])
        var nextAddress = 100
        for event in 0..<8 {
            var requests: [ChannelID: Date] = [:]
            switch random.next() % 3 {
            case 0:
                let node = Int(random.next() % 3)
                spec.nodes[node].ipv4 = "198.18.1.\(nextAddress)"
                nextAddress += 1
            case 1:
                spec.cipher = spec.cipher == "aes-gcm-256" ? "chacha20-poly1305" : "aes-gcm-256"
            default:
                fixture.clock.advance(by: 1)
                for id in fixture.records.keys where random.next() % 2 == 0 { requests[id] = fixture.clock.now() }
            }
            let intent = try spec.compile()
            // Interrupted: a few passes only, then the next change arrives.
            for _ in 0..<Int(random.next() % 4) {
                fixture.clock.advance(by: 2)
                try await fixture.pass(intent, rekeyRequests: requests)
            }
            if event % 2 == 1 || event == 7 {
                let outcome = try await fixture.apply(intent, rekeyRequests: requests)
                #expect(outcome == .converged, "seed \(seed), event \(event)")
                #expect(try fixture.missingExpectedObjects(intent) == [], "seed \(seed), event \(event): \(spec)")
            }
        }
    }

    @Test("1: a pass whose only remaining operation is held back is not converged, and a run says it stalled")
    func heldOperationIsNotConverged() async throws {
        let fixture = PlannerFixture()
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        // n1 loses its outbound policy while n2, though it answers, has no endpoint: the policy
        // can never be sent, and nothing else is left to do.
        let policy = try #require(try fixture.observe("n1").policies.first { $0.direction == .outbound })
        _ = fixture.fleet.withState { $0.apply(.deletePolicy(policy.identifier), on: "n1") }
        let input = PlanningInput(
            intent: intent, channels: fixture.records,
            observations: ["n1": try fixture.observe("n1"), "n2": try fixture.observe("n2")], knownNodes: ["n1"],
            reqid: fixture.reqid, now: fixture.clock.now())
        let plan = FleetPlanner().plan(input)
        #expect(plan.operationCount == 0)
        #expect(plan.heldCount > 0)
        #expect(!plan.isConverged)

        let reconciler = FleetReconciler(
            store: ScratchGenerationStore(channels: fixture.records),
            kernels: PartlyKnownKernels(fleet: fixture.fleet, known: ["n1"]), reqid: fixture.reqid,
            clock: fixture.clock, logger: .init(label: "test"))
        await #expect(throws: ReconcileError.self) {
            _ = try await reconciler.converge(intent: intent, waitForDrain: true)
        }
    }

    // MARK: 2. A used generation is burned

    @Test(
        "2: a switch recorded before sending; a sender that then loses state never gets that key again",
        arguments: [false, true])
    /// With `ruleOff` the rule is switched off and the test expects the failure (negative control).
    func switchedGenerationIsBurned(ruleOff: Bool) async throws {
        let fixture = PlannerFixture(rules: ruleOff ? [.installOnlyUnusedPending] : [])
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        fixture.clock.advance(by: 1)
        let requests = [Self.forward: fixture.clock.now()]
        var burned: SPI?
        for number in 1...6 {
            let prepared = try await fixture.reconciler.preparePass(
                number: number, intent: intent, records: &fixture.records, rekeyRequests: requests)
            let pending = fixture.records[Self.forward]?.pending
            let switches = (prepared.plan.operations["n1"] ?? []).contains { planned in
                guard case .updatePolicy(let policy) = planned.operation else { return false }
                return policy.direction == .outbound && policy.template.spi == pending?.spi
            }
            if switches {
                // On record before any kernel sees it.
                let stored = try await fixture.store.loadChannels()[Self.forward]?.pending
                #expect(stored?.switchSentAt != nil, "the switch is in the Store before it is sent")
                burned = pending?.spi
                _ = try await fixture.reconciler.execute(prepared)
                break
            }
            _ = try await fixture.reconciler.execute(prepared)
        }
        let used = try #require(burned, "a pass sent the switch")

        // The sender reboots before any observation saw the switch.
        fixture.fleet.wipe(node: "n1")
        let appliedBefore = fixture.applied.count
        #expect(try await fixture.apply(intent) == .converged)
        let reinstalled = fixture.applied.dropFirst(appliedBefore).filter { entry in
            if case .addSA(let sa) = entry.planned.operation { return sa.spi == used }
            return false
        }
        if ruleOff {
            #expect(!reinstalled.isEmpty, "switching off the rule went unnoticed")
            return
        }
        #expect(reinstalled.isEmpty, "the used generation's SA was installed again: \(reinstalled.map(\.planned))")
        #expect(fixture.records[Self.forward]?.active?.spi != used)
        #expect(try fixture.missingExpectedObjects(intent) == [])
    }

    @Test("2: a switch the kernel refused is retried with the same generation while its SAs stay")
    func refusedSwitchIsRetried() async throws {
        let fixture = PlannerFixture()
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        fixture.clock.advance(by: 1)
        let requests = [Self.forward: fixture.clock.now()]
        // Pass 1 installs the inbound SA, pass 2 the outbound one; pass 3 sends the switch.
        try await fixture.pass(intent, rekeyRequests: requests)
        try await fixture.pass(intent, rekeyRequests: requests)
        let pending = try #require(fixture.records[Self.forward]?.pending)
        fixture.fleet.failOperation(on: "n1", nth: 1, errno: EINVAL)
        let refused = try await fixture.pass(intent, rekeyRequests: requests)
        #expect(!refused.failures.isEmpty)
        #expect(try await fixture.apply(intent, rekeyRequests: requests) == .converged)
        #expect(fixture.records[Self.forward]?.active?.spi == pending.spi)
    }

    // MARK: 3. Kernel writes fenced by the lease

    @Test("3: a pass whose lease cannot be confirmed, or would expire too soon, changes no kernel")
    func unconfirmedLeaseSendsNothing() async throws {
        let intent = try FleetSpec.pair().compile()
        for fence in [ThrowingFence() as any WriteFence, ShortFence()] {
            let fixture = PlannerFixture(fence: fence)
            fixture.provision(intent)
            let before = fixture.fleet.state
            await #expect(throws: ReconcileError.self) { try await fixture.pass(intent) }
            #expect(fixture.fleet.state == before, "\(fence): a kernel changed")
        }
    }

    @Test("3: a lease confirmed for the pass but lost right before the nodes' batches changes no kernel")
    func leaseLostBeforeTheBatchesSendsNothing() async throws {
        let intent = try FleetSpec.pair().compile()
        let fence = LosingFence()
        let fixture = PlannerFixture(fence: fence)
        fixture.provision(intent)
        let before = fixture.fleet.state
        let report = try await fixture.pass(intent)
        #expect(fence.confirmations >= 2, "the batches were sent without confirming the lease again")
        #expect(!report.results.isEmpty)
        for (planned, outcome) in report.results {
            guard case .notAttempted(let reason) = outcome else {
                Issue.record("\(planned) was sent: \(outcome)")
                continue
            }
            #expect(reason.contains("the lease could not be renewed right before it"), "\(reason)")
        }
        #expect(fixture.fleet.state == before, "a kernel changed")
    }

    @Test("3: every operation is journaled as planned before its kernel receives it, then completed")
    func journaledBeforeSending() async throws {
        let store = ScratchGenerationStore(channels: [:])
        let fleet = SimulatedFleet()
        let kernels = JournalCheckingKernels(fleet: fleet, store: store)
        let intent = try FleetSpec.pair().compile()
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
        let reconciler = FleetReconciler(
            store: store, kernels: kernels, reqid: .meshwardDefault, clock: ManualClock(),
            logger: .init(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let report = try await reconciler.converge(intent: intent, waitForDrain: true)
        #expect(report.outcome == .converged)
        #expect(kernels.unjournaled == [], "operations sent without a planned journal entry")
        #expect(kernels.batches > 0)
        #expect(store.journal.count == report.operationCount)
        #expect(store.journal.allSatisfy { $0.result == "applied" && $0.appliedAt != nil })
    }

    @Test("3: a journal that refuses the planned entries fails the run and no kernel changes")
    func refusedJournalFailsTheRun() async throws {
        let fixture = PlannerFixture(store: RefusingJournalStore())
        let intent = try FleetSpec.pair().compile()
        fixture.provision(intent)
        let before = fixture.fleet.state
        await #expect(throws: ReconcileError.self) { try await fixture.pass(intent) }
        #expect(fixture.fleet.state == before)
    }

    // MARK: 4. A lost Store's SAs go, across runs

    @Test("4: SAs a lost Store left behind are deleted by runs that do not wait for the drain")
    func unaccountedSAsDrainAcrossRuns() async throws {
        let fixture = PlannerFixture()
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        fixture.loseStore()
        var outcome: ConvergeReport.Outcome?
        for _ in 0..<6 {
            // Each run is a new controller process (as `apply --no-wait` or a `reconcile --once` is).
            try await fixture.restartController()
            outcome = try await fixture.apply(intent, waitForDrain: false)
            if outcome == .converged { break }
            fixture.clock.advance(by: 3)
        }
        #expect(outcome == .converged)
        #expect(try fixture.missingExpectedObjects(intent) == [])
        let held = try ["n1", "n2"].map { try fixture.observe($0).securityAssociations.count }.reduce(0, +)
        #expect(held == 4, "only the two channels' new SAs remain on the two nodes")
    }

    // MARK: 5, 6. Drains run from the observed switch-away

    @Test("5: a re-addressed node's old inbound SA drains from the sender's switch-away")
    func oldAddressDrains() async throws {
        let fixture = PlannerFixture()
        #expect(try await fixture.apply(try FleetSpec.pair().compile()) == .converged)
        let old = try #require(fixture.records[Self.forward]?.active)
        try await Self.passes(fixture, try FleetSpec.pair(n2: "198.18.0.52").compile(), step: 1)
        let stopped = try #require(Self.switchAway(from: old.spi, sender: "n1", in: fixture))
        let deleted = try #require(Self.deletion(of: old.spi, on: "n2", in: fixture), "the old inbound SA went")
        #expect(deleted.timeIntervalSince(stopped) >= 5, "deleted \(deleted.timeIntervalSince(stopped)) s after")
    }

    @Test("6: a removed channel's inbound SA drains from the sender's switch-away, not from the spec change")
    func removalDrainsFromSwitchAway() async throws {
        let fixture = PlannerFixture()
        #expect(try await fixture.apply(try FleetSpec.pair().compile()) == .converged)
        let old = try #require(fixture.records[Self.forward]?.active)
        try await Self.passes(fixture, try FleetSpec.pair(flows: false).compile(), step: 2)
        let stopped = try #require(Self.switchAway(from: old.spi, sender: "n1", in: fixture))
        let deleted = try #require(Self.deletion(of: old.spi, on: "n2", in: fixture))
        #expect(deleted.timeIntervalSince(stopped) >= 5, "deleted \(deleted.timeIntervalSince(stopped)) s after")
        #expect(fixture.records[Self.forward] == nil)
    }

    // MARK: 7. The old SA's counter must stop moving

    @Test(
        "7: an old inbound SA whose packet counter still moves stays past the drain until it stops",
        arguments: [false, true])
    /// With `ruleOff` the check is switched off and the test expects the failure (negative control).
    func movingCounterDelaysDeletion(ruleOff: Bool) async throws {
        let fixture = PlannerFixture(rules: ruleOff ? [.counterStopped] : [])
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        let old = try #require(fixture.records[Self.forward]?.active)
        let id = SAIdentifier(destination: Self.n2, spi: old.spi)
        fixture.clock.advance(by: 1)
        var lastBump: Date?
        var switchedAt: Date?
        try await Self.passes(
            fixture, intent, step: 1, rekeyRequests: [Self.forward: fixture.clock.now()],
            before: { fixture in
                if switchedAt == nil,
                    let retiring = fixture.records[Self.forward]?.generations.first(where: {
                        $0.number == old.number && $0.supersededAt != nil
                    })
                {
                    switchedAt = retiring.supersededAt
                }
                // Late packets keep arriving under the old SPI for 8 s after the switch.
                if let switchedAt, fixture.clock.now() < switchedAt.addingTimeInterval(8) {
                    fixture.modifySA(on: "n2", id) { $0.counters.packets += 3 }
                    lastBump = fixture.clock.now()
                }
            })
        let bumped = try #require(lastBump)
        let deleted = try #require(Self.deletion(of: old.spi, on: "n2", in: fixture))
        if ruleOff {
            #expect(deleted <= bumped, "switching off the counter check went unnoticed")
            return
        }
        #expect(deleted > bumped, "deleted at \(deleted), the counter last moved at \(bumped)")
        #expect(fixture.reports.allSatisfy { $0.plan.drainsCutShort.isEmpty })
    }

    @Test("7: an old inbound SA whose counter never stops goes after ten drains, and says so")
    func movingCounterIsBounded() async throws {
        let fixture = PlannerFixture()
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        let old = try #require(fixture.records[Self.forward]?.active)
        let id = SAIdentifier(destination: Self.n2, spi: old.spi)
        fixture.clock.advance(by: 1)
        try await Self.passes(
            fixture, intent, step: 1, rekeyRequests: [Self.forward: fixture.clock.now()],
            before: { fixture in fixture.modifySA(on: "n2", id) { $0.counters.packets += 1 } })
        let switched = try #require(Self.switchAway(from: old.spi, sender: "n1", in: fixture))
        let deleted = try #require(Self.deletion(of: old.spi, on: "n2", in: fixture))
        #expect(deleted.timeIntervalSince(switched) >= 50)
        #expect(deleted.timeIntervalSince(switched) <= 52)
        #expect(fixture.reports.contains { $0.plan.drainsCutShort == [id] })
    }

    // MARK: 8. Replay window and ESN are part of an SA's configuration

    @Test(
        "8: a tampered replay window or ESN flag is a key-mismatch rekey",
        arguments: ["replay window 0", "ESN off"])
    func tamperedReplaySettingsRekey(_ change: String) async throws {
        let fixture = PlannerFixture()
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        let old = try #require(fixture.records[Self.forward]?.active)
        fixture.modifySA(on: "n2", SAIdentifier(destination: Self.n2, spi: old.spi)) { sa in
            if change == "ESN off" { sa.extendedSequenceNumbers = false } else { sa.replayWindow = 0 }
        }
        let issuedBefore = fixture.reports.flatMap(\.issued).count
        #expect(try await fixture.apply(intent) == .converged)
        let issued = fixture.reports.flatMap(\.issued).dropFirst(issuedBefore)
        #expect(issued.map(\.channel) == [Self.forward])
        #expect(issued.map(\.reason) == [.keyMismatch])
        #expect(try fixture.missingExpectedObjects(intent) == [])
    }
}

/// A fence that refuses: the lease was lost.
private struct ThrowingFence: WriteFence, CustomStringConvertible {
    struct Lost: Error {}
    func confirm(at now: Date) throws -> Date { throw Lost() }
    var description: String { "a lost lease" }
}

/// A fence whose lease expires a second sooner than a batch may take: too soon for a batch.
private struct ShortFence: WriteFence, CustomStringConvertible {
    func confirm(at now: Date) throws -> Date { now.addingTimeInterval(FleetReconciler.kernelCallBound - 1) }
    var description: String { "a lease \(Int(FleetReconciler.kernelCallBound - 1)) s from expiry" }
}

/// A fence confirmed once, for the pass, and lost from then on: another controller took the
/// lease while the pass was about to send.
private final class LosingFence: WriteFence, Sendable {
    struct Lost: Error, CustomStringConvertible {
        var description: String { "another controller took the lease" }
    }
    private let count = Mutex(0)
    var confirmations: Int { count.withLock { $0 } }

    func confirm(at now: Date) throws -> Date {
        let number = count.withLock { count -> Int in
            count += 1
            return count
        }
        guard number == 1 else { throw Lost() }
        return now.addingTimeInterval(15)
    }
}

/// The simulated fleet's kernels, with only `known` reachable in principle (others answer but
/// have no endpoint).
private final class PartlyKnownKernels: FleetKernels {
    let fleet: SimulatedFleet
    let knownNodes: Set<String>

    init(fleet: SimulatedFleet, known: Set<String>) {
        self.fleet = fleet
        knownNodes = known
    }

    func kernel(for node: String) async throws -> any NodeKernel { fleet.kernel(for: node, reqid: .meshwardDefault) }
    func persist() throws {}
}

/// Kernels that check, as each batch arrives, that every operation in it is already in the
/// journal as planned.
private final class JournalCheckingKernels: FleetKernels, @unchecked Sendable {
    let fleet: SimulatedFleet
    let store: ScratchGenerationStore
    private let lock = NSLock()
    private(set) var unjournaled: [String] = []
    private(set) var batches = 0

    init(fleet: SimulatedFleet, store: ScratchGenerationStore) {
        self.fleet = fleet
        self.store = store
    }

    var knownNodes: Set<String> { Set(fleet.withState { $0.nodes.keys }) }

    func kernel(for node: String) async throws -> any NodeKernel {
        CheckingKernel(inner: fleet.kernel(for: node, reqid: .meshwardDefault), owner: self)
    }

    func persist() throws {}

    func check(_ operations: [KernelOperation], on node: String) {
        let planned = store.journal.filter { $0.node == node && $0.result == "planned" }.map(\.target)
        lock.withLock {
            batches += 1
            var remaining = planned
            for operation in operations {
                if let position = remaining.firstIndex(of: operation.target) {
                    remaining.remove(at: position)
                } else {
                    unjournaled.append("\(node): \(operation)")
                }
            }
        }
    }

    struct CheckingKernel: NodeKernel {
        let inner: SimulatedKernel
        let owner: JournalCheckingKernels
        var node: String { inner.node }
        var reqid: Reqid { inner.reqid }
        func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
            try await inner.observe(deadline: deadline)
        }
        func apply(
            _ operations: [KernelOperation], deadline: ContinuousClock.Instant
        ) async throws
            -> [OperationResult]
        {
            owner.check(operations, on: node)
            return try await inner.apply(operations, deadline: deadline)
        }
    }
}

/// A generation store whose journal refuses every write.
private final class RefusingJournalStore: GenerationStore, JournalStore {
    let inner = ScratchGenerationStore(channels: [:])
    struct Refused: Error {}
    func loadChannels() throws -> [ChannelID: ChannelRecord] { try inner.loadChannels() }
    func hasChannels() throws -> Bool { try inner.hasChannels() }
    func issueGenerations(_ requests: [GenerationRequest], now: Date) throws -> [Generation] {
        try inner.issueGenerations(requests, now: now)
    }
    func update(_ records: [ChannelRecord]) throws { try inner.update(records) }
    func removeChannels(_ ids: [ChannelID]) throws { try inner.removeChannels(ids) }
    func appendJournal(_ entries: [JournalEntry]) throws -> [JournalEntry] { throw Refused() }
    func completeJournal(_ entries: [JournalEntry]) throws { throw Refused() }
    func journal(limit: Int?, node: String?) throws -> [JournalEntry] { throw Refused() }
    func pruneJournal(plannedBefore date: Date) throws -> Int { throw Refused() }
    func unaccountedSAs() throws -> [UnaccountedSA] { try inner.unaccountedSAs() }
    func recordUnaccountedSAs(freed: [UnaccountedSA], forgotten: [(destination: IPAddress, spi: SPI)]) throws {
        try inner.recordUnaccountedSAs(freed: freed, forgotten: forgotten)
    }
}

/// Lost replies: a batch that reached the kernel but whose answer was lost.
@Suite("Indeterminate operations")
struct IndeterminateOperationTests {
    @Test("an apply whose answer is lost is journaled indeterminate and never resent: the next observation decides")
    func lostAnswerIsIndeterminate() async throws {
        let store = ScratchGenerationStore(channels: [:])
        let fleet = SimulatedFleet()
        let intent = try FleetSpec.pair().compile()
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
        let kernels = LostAnswerKernels(fleet: fleet, losingPass: 1)
        let reconciler = FleetReconciler(
            store: store, kernels: kernels, reqid: .meshwardDefault, clock: ManualClock(),
            logger: .init(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        var records: [ChannelID: ChannelRecord] = [:]
        let first = try await reconciler.runPass(number: 1, intent: intent, records: &records)
        #expect(!first.results.isEmpty)
        #expect(first.results.allSatisfy { if case .indeterminate = $0.outcome { true } else { false } })
        #expect(store.journal.allSatisfy { $0.result.hasPrefix("indeterminate") && $0.appliedAt == nil })
        // They did take effect: the next pass sees them and sends the next step, not the same again.
        let second = try await reconciler.runPass(number: 2, intent: intent, records: &records)
        let resent = Set(first.results.map(\.planned)).intersection(second.results.map(\.planned))
        #expect(resent.isEmpty, "resent: \(resent)")
        #expect(!second.results.isEmpty)
    }
}

/// The simulated fleet, with every answer of one pass's batches lost after the operations
/// took effect.
private final class LostAnswerKernels: FleetKernels, @unchecked Sendable {
    let fleet: SimulatedFleet
    let losingPass: Int
    private let lock = NSLock()
    private var observations = 0

    init(fleet: SimulatedFleet, losingPass: Int) {
        self.fleet = fleet
        self.losingPass = losingPass
    }

    var knownNodes: Set<String> { Set(fleet.withState { $0.nodes.keys }) }

    func kernel(for node: String) async throws -> any NodeKernel {
        LosingKernel(inner: fleet.kernel(for: node, reqid: .meshwardDefault), owner: self)
    }

    func persist() throws {}

    /// The pass being run, counted by observations (two nodes observe once per pass).
    func noteObservation() { lock.withLock { observations += 1 } }
    var pass: Int { lock.withLock { (observations + 1) / 2 } }

    struct LosingKernel: NodeKernel {
        let inner: SimulatedKernel
        let owner: LostAnswerKernels
        var node: String { inner.node }
        var reqid: Reqid { inner.reqid }
        func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
            owner.noteObservation()
            return try await inner.observe(deadline: deadline)
        }
        func apply(
            _ operations: [KernelOperation], deadline: ContinuousClock.Instant
        ) async throws
            -> [OperationResult]
        {
            let results = try await inner.apply(operations, deadline: deadline)
            guard owner.pass == owner.losingPass else { return results }
            return results.map {
                OperationResult(operation: $0.operation, outcome: .indeterminate(reason: "reply lost"))
            }
        }
    }
}
