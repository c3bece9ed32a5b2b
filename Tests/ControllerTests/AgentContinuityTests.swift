import AgentTestSupport
import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Store
import Synchronization
import Testing

@testable import Controller
@testable import Reconciler
@testable import ReconcilerTestSupport

/// The continuity suite once more with every node behind an in-process agent (real gRPC and
/// mutual TLS on loopback, the agents serving the harness's simulated fleet): the transport
/// changes nothing the staging guarantees.
@Suite("Continuity behind agents")
struct AgentContinuityTests {
    static let nodes = ["n1", "n2", "n3", "n4"]

    @Test(
        "with every node behind an agent, a converged fleet goes through one change without a drop in every reachable state",
        arguments: FleetChange.all)
    func change(_ change: FleetChange) async throws {
        let harness = ContinuityHarness(seed: 1)
        let agents = try await InProcessAgents.start(
            nodes: Self.nodes, connector: SimulatedConnector(fleet: harness.fleet))
        harness.routeThroughAgents(AgentFleetKernels(fleet: harness.fleet, agents: agents))
        var spec = FleetSpec.threeTier
        try await harness.converge(try spec.compile())
        let requests = change.apply(&spec, harness)
        let intent = try spec.compile()
        let passes = try await harness.converge(intent, rekeyRequests: requests)
        await agents.stop()
        #expect(harness.violations == [], "\(change.name)")
        try harness.assertConverged(intent)
        #expect(passes <= ConvergenceBound.passesPerChange, "\(change.name) took \(passes) passes")
        #expect(harness.checkedOperations > 0 || change.name == "nothing")
    }

    @Test(
        "with every node behind a watched agent and every pass planned on the watch's cache, a converged fleet goes through one change without a drop in every reachable state, every operation goes to a node read afresh in its pass, and no SPI or key is used twice",
        .timeLimit(.minutes(2)), arguments: FleetChange.all)
    func changeOnTheWatchCache(_ change: FleetChange) async throws {
        let watched = try await WatchedAgents(seed: 1, nodes: Self.nodes)
        let harness = watched.harness
        var spec = FleetSpec.threeTier
        var ledger = InstalledKeyLedger()
        try await harness.converge(try spec.compile()) { ledger.note($0) }
        // Watched once the fleet's machines exist: a stream opened before would fail and wait
        // out its backoff on a clock that only the passes' drains move.
        let watch = watched.watch()
        let requests = change.apply(&spec, harness)
        let intent = try spec.compile()
        // What happened out of band reaches the watch's copies before the pass plans on them (a
        // running loop is woken by it: WatchLoopTests).
        try await watched.waitUntilCaughtUp(watch)
        var sentOnCachedFacts: [String] = []
        var plannedOnCache = 0
        let passes = try await harness.converge(intent, rekeyRequests: requests, planningOnCache: true) { report in
            ledger.note(report)
            for (planned, _) in report.results where !report.freshlyRead.contains(planned.node) {
                sentOnCachedFacts.append("pass \(report.number): \(planned)")
            }
            if report.freshlyRead.count < Self.nodes.count { plannedOnCache += 1 }
        }
        watch.stop()
        await watched.stop()
        ledger.note(harness.records)
        #expect(harness.violations == [], "\(change.name)")
        #expect(sentOnCachedFacts == [], "\(change.name)")
        #expect(ledger.reuses == [], "\(change.name)")
        try harness.assertConverged(intent)
        #expect(passes <= ConvergenceBound.passesPerChange, "\(change.name) took \(passes) passes")
        #expect(harness.checkedOperations > 0 || change.name == "nothing")
        #expect(plannedOnCache > 0, "no pass of \(change.name) planned on the cache")
    }

    /// A fault of the watch injected in the middle of a rekey (n2 is the middle node of the
    /// three-tier fleet: every channel touches it).
    enum WatchFault: String, CaseIterable, CustomTestStringConvertible {
        /// n2's watch socket overflows after the first pass (its changes are not recorded) and
        /// recovers by a resynchronising dump after the second, as the agent does on ENOBUFS.
        case lostEvents = "events lost on n2 (ENOBUFS) and recovered by a dump"
        /// n2's agent ends its stream after the first pass; the second pass runs while the
        /// controller's stream backs off; after it, the stream resumes from its copy's position
        /// (a replay of the second pass's changes from the agent's ring, no snapshot) once the
        /// controller's clock reaches the end of the backoff.
        case streamCut = "n2's stream cut by its agent mid-rekey and resumed from its position after its backoff"
        /// n2's agent stops after the first pass and starts again on its port with a new watch
        /// model (a new epoch, the same boot ID): the controller's stream, resumed after its
        /// backoff from a position of the old epoch, gets a snapshot, which the next pass plans on.
        case agentRestarted = "n2's agent restarted mid-rekey: a new epoch, the stream takes a snapshot"
        /// The controller restarts after the first pass: a new watch, every stream opened anew
        /// from nothing (one snapshot each, in before the second pass), a new reconciler.
        case controllerRestarted = "the controller restarted: every stream starts again from a snapshot"
        /// n2's stream is held back from the first pass's first change on: the second pass finds
        /// its copy waiting for the first pass's batch and reads n2 afresh; then every held message
        /// is delivered, the first pass's changes older than that reading. The copy never goes
        /// back behind the reading, and stands at n2's position with n2's objects after.
        case eventDelayed = "a change of n2 delayed past the next pass's fresh read of n2, then delivered"

        var testDescription: String { rawValue }
    }

    /// The nodes of the three-tier fleet, the ones the rekey's watch follows (a node the fleet
    /// does not have would keep a stream backing off on the clock the faults move).
    static let threeTierNodes = ["n1", "n2", "n3"]

    @Test(
        "a rekey of every channel behind watched agents, planned on the watch's cache, with a fault of the watch in its middle: no drop in any reachable state, every operation sent to a node read afresh, no SPI or key used twice, converged at the end",
        .timeLimit(.minutes(2)), arguments: WatchFault.allCases)
    func rekeyWithWatchFault(_ fault: WatchFault) async throws {
        let run = try await FaultedRekey.run(fault)
        #expect(run.violations == [], "\(fault)")
        #expect(run.sentOnCachedFacts == [], "\(fault)")
        #expect(run.faultFindings == [], "\(fault)")
        #expect(run.failure == nil, "\(fault)")
        #expect(run.notConverged == nil, "\(fault)")
        #expect(run.reuses == [], "\(fault)")
        #expect(run.installed > 0, "\(fault): no SA sent")
        #expect(run.passes <= ConvergenceBound.passesPerChange, "\(fault): \(run.passes) passes")
        #expect(run.rotated == run.channels, "\(fault): \(run.rotated) of \(run.channels) rotated")
        #expect(run.plannedOnCache > 0, "no pass of the rekey planned on the cache (\(fault))")
    }

    @Test(
        "negative control: with the fresh reads before acting switched off, the same rekey with a change of n2 delayed past a fresh read is caught sending on cached facts",
        .timeLimit(.minutes(2)), arguments: [WatchFault.eventDelayed])
    func rekeyWithWatchFaultCatchesPlansSentOnCachedFacts(_ fault: WatchFault) async throws {
        let run = try await FaultedRekey.run(fault, readsAfreshBeforeActing: false)
        #expect(!run.sentOnCachedFacts.isEmpty, "\(fault): nothing was sent on cached facts")
    }

    /// A rekey of every channel of the three-tier fleet behind watched agents, planned on the
    /// watch's cache, with `fault` injected between its passes, and what its checks found.
    struct FaultedRekey {
        /// Continuity violations in any reachable state.
        var violations: [String] = []
        /// Operations sent to a node not read afresh in their pass.
        var sentOnCachedFacts: [String] = []
        /// What the fault itself was expected to do and did not.
        var faultFindings: [String] = []
        /// SPIs or keys used twice (`InstalledKeyLedger`), and how many SAs were sent in all.
        var reuses: [String] = []
        var installed = 0
        /// The rekey's error, when it did not converge.
        var failure: String?
        /// What `assertConverged` found wrong at the end.
        var notConverged: String?
        var passes = 0
        /// Passes that planned on the cache (read fewer nodes than the fleet has).
        var plannedOnCache = 0
        /// Channels whose active generation is one issued for the rekey, and channels in all.
        var rotated = 0
        var channels = 0

        static func run(_ fault: WatchFault, readsAfreshBeforeActing: Bool = true) async throws -> FaultedRekey {
            let watched = try await WatchedAgents(seed: 1, nodes: AgentContinuityTests.threeTierNodes)
            let harness = watched.harness
            let intent = try FleetSpec.threeTier.compile()
            var ledger = InstalledKeyLedger()
            try await harness.converge(intent) { ledger.note($0) }
            let delay = WatchDelay(onHold: { [events = watched.events] in events.changed() })
            var watch = watched.watch(
                delaying: fault == .eventDelayed ? delay : nil, readsAfreshBeforeActing: readsAfreshBeforeActing)
            try await watched.waitUntilCaughtUp(watch)
            harness.clock.advance(by: 1)
            let requests = Dictionary(uniqueKeysWithValues: harness.records.keys.map { ($0, harness.clock.now()) })
            var run = FaultedRekey()
            let n2 = try watched.model(of: "n2").position
            if fault == .eventDelayed { delay.hold("n2") }
            var injection = FaultInjection(fault: fault, watched: watched, delay: delay, before: n2)
            do {
                run.passes = try await harness.converge(intent, rekeyRequests: requests, planningOnCache: true) {
                    report in
                    ledger.note(report)
                    for (planned, _) in report.results where !report.freshlyRead.contains(planned.node) {
                        run.sentOnCachedFacts.append("pass \(report.number): \(planned)")
                    }
                    if report.freshlyRead.count < AgentContinuityTests.threeTierNodes.count { run.plannedOnCache += 1 }
                    try await injection.after(report, watch: &watch, readsAfreshBeforeActing: readsAfreshBeforeActing)
                }
            } catch {
                run.failure = "\(error)"
            }
            delay.release("n2")
            watch.stop()
            await watched.stop()
            run.faultFindings = injection.findings
            if !injection.done { run.faultFindings.append("the fault was not injected in full") }
            run.violations = harness.violations
            do {
                try harness.assertConverged(intent)
            } catch {
                run.notConverged = "\(error)"
            }
            ledger.note(harness.records)
            run.reuses = ledger.reuses
            run.installed = ledger.installed
            run.channels = harness.records.count
            run.rotated =
                harness.records.values.filter { record in
                    record.generations.contains {
                        $0.state == .active && $0.createdAt >= requests[record.id] ?? .distantFuture
                    }
                }.count
            return run
        }
    }

    /// Injects one fault between the passes of a rekey, and checks what the fault itself must do.
    struct FaultInjection {
        let fault: WatchFault
        let watched: WatchedAgents
        let delay: WatchDelay
        /// n2's position before the rekey.
        let before: WatchPosition
        /// What the fault was expected to do and did not.
        var findings: [String] = []
        /// Whether every step of the fault was taken.
        var done = false
        /// The changes of n2 held back once the first pass's batch was answered.
        private var heldAfterFirstPass: [UInt64] = []

        init(fault: WatchFault, watched: WatchedAgents, delay: WatchDelay, before: WatchPosition) {
            self.fault = fault
            self.watched = watched
            self.delay = delay
            self.before = before
        }

        /// Takes the fault's step after pass `report.number`, if it has one then.
        mutating func after(
            _ report: PassReport, watch: inout FleetWatch, readsAfreshBeforeActing: Bool
        ) async throws {
            let node = "n2"
            let status = { (watch: FleetWatch) in watch.nodes.first { $0.node == node } }
            switch (fault, report.number) {
            case (.lostEvents, 1):
                watched.harness.fleet.loseWatchEvents(on: node)
            case (.lostEvents, 2):
                watched.harness.fleet.recoverLostWatchEvents(on: node)
                done = true
            case (.streamCut, 1):
                try watched.model(of: node).stop(reason: "the agent cut the stream")
                try await watched.waitForBackoff()
            case (.streamCut, 2):
                let model = try watched.model(of: node)
                guard watch.position(of: node) != model.position else {
                    // Nothing to replay: the stream's return would not be seen.
                    findings.append("the second pass changed nothing on \(node) while its stream was cut")
                    return
                }
                let snapshots = status(watch)?.snapshots
                let resumes = status(watch)?.resumes ?? 0
                try await watched.resumeAfterBackoff(watch)
                if status(watch)?.snapshots != snapshots {
                    findings.append("the cut stream came back with a snapshot, not a replay from its position")
                }
                if (status(watch)?.resumes ?? 0) < max(resumes, 1) {
                    findings.append("the cut stream was not counted as resumed")
                }
                done = true
            case (.agentRestarted, 1):
                let epoch = watch.position(of: node)?.epoch
                let snapshots = status(watch)?.snapshots ?? 0
                try await watched.restartAgent(node)
                try await watched.resumeAfterBackoff(watch)
                let now = try watched.model(of: node).position
                if now.epoch == epoch || watch.position(of: node) != now {
                    findings.append("the copy of \(node) is not at the restarted agent's new epoch")
                }
                if (status(watch)?.snapshots ?? 0) != snapshots + 1 {
                    findings.append("the new epoch did not bring one snapshot of \(node)")
                }
                done = true
            case (.controllerRestarted, 1):
                watch.stop()
                watch = watched.watch(readsAfreshBeforeActing: readsAfreshBeforeActing)
                try await watched.waitUntilCaughtUp(watch)
                let started = watch.nodes.filter { $0.snapshots != 1 }.map(\.node)
                if !started.isEmpty {
                    findings.append("the new watch's streams of \(started) did not each start from one snapshot")
                }
                done = true
            case (.eventDelayed, 1):
                let model = try watched.model(of: node)
                guard model.position.seq > before.seq else {
                    findings.append("the first pass changed nothing on \(node): no change to delay")
                    return
                }
                // Every change of the first pass on n2 is held back before the second pass starts.
                let target = model.position.seq
                await watched.events.wait { [delay] in delay.heldChanges(of: node).last == target }
                heldAfterFirstPass = delay.heldChanges(of: node)
                if heldAfterFirstPass.first != before.seq + 1 || heldAfterFirstPass.last != target {
                    findings.append(
                        "held \(heldAfterFirstPass), not the first pass's changes \(before.seq + 1)...\(target)")
                }
            case (.eventDelayed, 2):
                guard let newest = heldAfterFirstPass.last else { return }
                guard report.freshlyRead.contains(node), let read = watch.position(of: node), read.seq >= newest
                else {
                    findings.append("the second pass did not read \(node) afresh past its delayed changes")
                    return
                }
                let seen = watched.trail.positions(of: node).count
                let delivered = delay.release(node)
                let trail = watched.trail
                await watched.events.wait { trail.positions(of: node).count >= seen + delivered }
                try await watched.waitUntilCaughtUp(watch)
                let after = watched.trail.positions(of: node).dropFirst(seen)
                if after.count < delivered {
                    findings.append("\(after.count) of the \(delivered) delayed messages were taken in")
                }
                let behind = after.filter { $0.map { $0.epoch != read.epoch || $0.seq < read.seq } ?? true }
                for position in behind {
                    let back = position.map { "seq \($0.seq) of epoch \($0.epoch)" } ?? "no position"
                    findings.append("a delayed change took the copy of \(node) back to \(back), behind the reading")
                }
                let model = try watched.model(of: node)
                if let copy = watch.cachedObservation(of: node) {
                    let objects = WatchedObjects(
                        securityAssociations: copy.securityAssociations, policies: copy.policies)
                    if objects.digest != model.digest {
                        findings.append("the copy of \(node) does not hold its objects once the delayed changes came")
                    }
                } else {
                    findings.append("the copy of \(node) does not stand for it once the delayed changes came")
                }
                done = true
            default:
                break
            }
        }
    }

    @Test(
        "a revoked agent's channels are removed from its peers' side without a drop on the pairs that stay, and it is never dialled"
    )
    func revokedNodeLeavesForItsPeers() async throws {
        let harness = ContinuityHarness(seed: 1)
        let agents = try await InProcessAgents.start(
            nodes: Self.nodes, connector: SimulatedConnector(fleet: harness.fleet))
        harness.routeThroughAgents(AgentFleetKernels(fleet: harness.fleet, agents: agents))
        let intent = try FleetSpec.threeTier.compile()
        try await harness.converge(intent)
        let n3 = try #require(harness.fleet.state.nodes["n3"])
        let n3Addresses = Set(n3.addresses)
        #expect(
            harness.fleet.state.nodes["n2"]?.securityAssociations.contains { n3Addresses.contains($0.source) } == true)

        // Every certificate of n3 is revoked: the passes treat it as gone, as apply does.
        let revoked = RevokedNodes(["n3"])
        let dialled = DialCount()
        harness.routeThroughAgents(
            revoked.kernels(
                CountingKernels(base: AgentFleetKernels(fleet: harness.fleet, agents: agents), count: dialled)))
        let remaining = revoked.intent(intent)
        #expect(remaining.nodes.map(\.name) == ["n1", "n2"])
        #expect(remaining.channels.allSatisfy { $0.id.from != "n3" && $0.id.to != "n3" } && !remaining.channels.isEmpty)
        let passes = try await harness.converge(remaining)
        await agents.stop()
        // Only the cut pair loses traffic (n3 still sends and expects ESP; nothing of n2 answers
        // it any more); every pair that stays lost nothing.
        let cut = harness.violations.filter { $0.contains("n3->n2/") || $0.contains("n2->n3/") }
        #expect(harness.violations.filter { !cut.contains($0) } == [])
        #expect(!cut.isEmpty, "the harness saw n3's traffic toward n2 refused")
        try harness.assertConverged(remaining, excluding: ["n3"])
        #expect(passes <= ConvergenceBound.passesPerChange, "took \(passes) passes")
        #expect(harness.checkedOperations > 0)
        let n2 = try #require(harness.fleet.state.nodes["n2"])
        #expect(
            !n2.securityAssociations.contains {
                n3Addresses.contains($0.source) || n3Addresses.contains($0.destination)
            })
        #expect(
            !n2.policies.contains {
                n3Addresses.contains($0.selector.source.address)
                    || n3Addresses.contains($0.selector.destination.address)
            })
        #expect(harness.records.keys.allSatisfy { $0.from != "n3" && $0.to != "n3" }, "\(harness.records.keys)")
        #expect(dialled.nodes.contains("n2") && !dialled.nodes.contains("n3"), "dialled \(dialled.nodes)")
        // The revoked node itself was left as it was: nothing reached it.
        #expect(harness.fleet.state.nodes["n3"]?.securityAssociations == n3.securityAssociations)
        #expect(harness.fleet.state.nodes["n3"]?.policies == n3.policies)
    }

    @Test(
        "a pass over nodes behind agents measures when each agent's certificate expires, per node, as its handshake showed it"
    )
    func passMeasuresAgentCertificateExpiry() async throws {
        let fleet = SimulatedFleet()
        let intent = try FleetSpec.pair().compile()
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
        // InProcessAgents issues every agent a certificate for 24 h from now; a certificate's
        // times are whole seconds, rounded.
        let issued = Date()
        let agents = try await InProcessAgents.start(
            nodes: intent.nodes.map(\.name), connector: SimulatedConnector(fleet: fleet))
        let clock = ManualClock()
        let reconciler = FleetReconciler(
            store: ScratchGenerationStore(channels: [:]), kernels: AgentFleetKernels(fleet: fleet, agents: agents),
            reqid: .meshwardDefault, clock: clock,
            logger: .init(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        var records: [ChannelID: ChannelRecord] = [:]
        let before = records
        let report = try await reconciler.runPass(number: 1, intent: intent, records: &records)
        await agents.stop()
        let measurement = PassMeasurement(
            report: report, before: before, after: records, intent: intent, now: clock.now())
        #expect(Set(measurement.agentCertificateExpiries.keys) == ["n1", "n2"])
        for (node, expiry) in measurement.agentCertificateExpiries {
            #expect(
                expiry >= issued.timeIntervalSince1970 + 86_400 - 1
                    && expiry <= Date().timeIntervalSince1970 + 86_400 + 1,
                "\(node): issued for 24 h at \(issued.timeIntervalSince1970), measured expiry \(expiry)")
        }
    }

    @Test(
        "a batch whose reply a slow agent lost is journaled indeterminate, and the next pass does not resend it",
        .timeLimit(.minutes(2)))
    func lostReply() async throws {
        let fleet = SimulatedFleet()
        let intent = try FleetSpec.pair().compile()
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
        let events = LoopEvents()
        let slow = SlowAfterApply(events: events)
        let agents = try await InProcessAgents.start(nodes: intent.nodes.map(\.name), connector: slow.connector(fleet))
        let store = ScratchGenerationStore(channels: [:])
        let clock = ManualClock(onChange: { events.changed() })
        let reconciler = FleetReconciler(
            store: store, kernels: AgentFleetKernels(fleet: fleet, agents: agents), reqid: .meshwardDefault,
            clock: clock, logger: .init(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        slow.delay(true)
        let firstPass = Task {
            var records: [ChannelID: ChannelRecord] = [:]
            let report = try await reconciler.runPass(number: 1, intent: intent, records: &records)
            return (report, records)
        }
        // Both agents applied their batch and hold the reply; the two observations' deadlines
        // ended, the two batches' still wait: the clock moves past them.
        await events.wait { slow.held == 2 && clock.watchesStarted == 4 && clock.watching == 2 }
        clock.advance(by: FleetReconciler.batchTimeout.timeInterval)
        let (first, passed) = try await firstPass.value
        var records = passed
        slow.delay(false)
        #expect(!first.results.isEmpty, "unreachable: \(first.unreachable)")
        #expect(first.results.allSatisfy { if case .indeterminate = $0.outcome { true } else { false } })
        // Given up by the reconciler at its deadline on its clock, not by the transport.
        let late = "did not answer before its deadline of 5 s for one batch"
        #expect(first.results.allSatisfy { "\($0.outcome)".contains(late) }, "\(first.results.map(\.outcome))")
        #expect(store.journal.allSatisfy { if case .indeterminate = $0.result { $0.appliedAt == nil } else { false } })
        let second = try await reconciler.runPass(number: 2, intent: intent, records: &records)
        let resent = Set(first.results.map(\.planned)).intersection(second.results.map(\.planned))
        #expect(resent.isEmpty, "resent: \(resent)")
        #expect(!second.results.isEmpty)
        await agents.stop()
    }
}

/// Serves a simulated fleet whose batches take effect and then, while `delay` is on, hold
/// their answer until it is turned off (telling `events` of each held): the controller's
/// deadline passes with the work done.
final class SlowAfterApply: Sendable {
    private let events: LoopEvents
    private let state = Mutex<(slow: Bool, held: Int, gate: TestGate)>((false, 0, TestGate()))

    init(events: LoopEvents) { self.events = events }

    /// Turned off, it lets every held answer go.
    func delay(_ on: Bool) {
        let released = state.withLock { state -> TestGate? in
            defer { state.slow = on }
            guard state.slow, !on else { return nil }
            defer { state.gate = TestGate() }
            return state.gate
        }
        released?.open()
    }

    /// How many batches took effect and held their answer.
    var held: Int { state.withLock { $0.held } }

    func connector(_ fleet: SimulatedFleet) -> InterceptingConnector {
        InterceptingConnector(
            fleet: fleet,
            apply: { kernel, operations, deadline in
                let results = try await kernel.apply(operations, deadline: deadline)
                let gate = self.state.withLock { state -> TestGate? in
                    guard state.slow else { return nil }
                    state.held += 1
                    return state.gate
                }
                if let gate {
                    self.events.changed()
                    await gate.wait()
                }
                return results
            })
    }
}

/// The nodes a fleet's kernels were asked for.
final class DialCount: Sendable {
    private let asked = Mutex<Set<String>>([])
    var nodes: Set<String> { asked.withLock { $0 } }
    func note(_ node: String) { _ = asked.withLock { $0.insert(node) } }
}

/// Kernels that note every node asked for before passing the request on.
final class CountingKernels: FleetKernels {
    let base: any FleetKernels
    let count: DialCount

    init(base: any FleetKernels, count: DialCount) {
        self.base = base
        self.count = count
    }

    var knownNodes: Set<String> { base.knownNodes }

    func kernel(for node: String) async throws -> any NodeKernel {
        count.note(node)
        return try await base.kernel(for: node)
    }

    func persist() throws { try base.persist() }

    func close() async { await base.close() }
}
