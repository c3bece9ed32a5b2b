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
        "with every node behind a watched agent and every pass planned on the watch's cache, a converged fleet goes through one change without a drop in every reachable state, and every operation goes to a node read afresh in its pass",
        .timeLimit(.minutes(2)), arguments: FleetChange.all)
    func changeOnTheWatchCache(_ change: FleetChange) async throws {
        let harness = ContinuityHarness(seed: 1)
        let watched = try await WatchedAgents(harness: harness, nodes: Self.nodes)
        let watch = watched.watch()
        var spec = FleetSpec.threeTier
        try await harness.converge(try spec.compile())
        let requests = change.apply(&spec, harness)
        let intent = try spec.compile()
        // What happened out of band reaches the watch's copies before the pass plans on them (a
        // running loop is woken by it: WatchLoopTests).
        try await watched.waitUntilCaughtUp(watch)
        var sentOnCachedFacts: [String] = []
        var plannedOnCache = 0
        let passes = try await harness.converge(intent, rekeyRequests: requests, planningOnCache: true) { report in
            for (planned, _) in report.results where !report.freshlyRead.contains(planned.node) {
                sentOnCachedFacts.append("pass \(report.number): \(planned)")
            }
            if report.freshlyRead.count < Self.nodes.count { plannedOnCache += 1 }
        }
        watch.stop()
        await watched.agents.stop()
        #expect(harness.violations == [], "\(change.name)")
        #expect(sentOnCachedFacts == [], "\(change.name)")
        try harness.assertConverged(intent)
        #expect(passes <= ConvergenceBound.passesPerChange, "\(change.name) took \(passes) passes")
        #expect(harness.checkedOperations > 0 || change.name == "nothing")
        #expect(plannedOnCache > 0, "no pass of \(change.name) planned on the cache")
    }

    /// A fault of the watch injected in the middle of a rekey.
    enum WatchFault: String, CaseIterable, CustomTestStringConvertible {
        /// n2's watch socket overflows after the first pass (its changes are not recorded) and
        /// recovers by a resynchronising dump after the second, as the agent does on ENOBUFS.
        case lostEvents = "events lost on n2 (ENOBUFS) and recovered by a dump"
        /// The controller restarts after the first pass: a new watch, every stream opened anew
        /// from nothing (a snapshot), a new reconciler.
        case controllerRestarted = "the controller restarted: every stream starts again from a snapshot"

        var testDescription: String { rawValue }
    }

    @Test(
        "a rekey of every channel behind watched agents, planned on the watch's cache, with a fault of the watch in its middle: no drop in any reachable state, every operation sent to a node read afresh, converged at the end",
        .timeLimit(.minutes(2)), arguments: WatchFault.allCases)
    func rekeyWithWatchFault(_ fault: WatchFault) async throws {
        let harness = ContinuityHarness(seed: 1)
        let watched = try await WatchedAgents(harness: harness, nodes: Self.nodes)
        var watch = watched.watch()
        let intent = try FleetSpec.threeTier.compile()
        try await harness.converge(intent)
        try await watched.waitUntilCaughtUp(watch)
        harness.clock.advance(by: 1)
        let requests = Dictionary(uniqueKeysWithValues: harness.records.keys.map { ($0, harness.clock.now()) })
        var sentOnCachedFacts: [String] = []
        let passes = try await harness.converge(intent, rekeyRequests: requests, planningOnCache: true) { report in
            for (planned, _) in report.results where !report.freshlyRead.contains(planned.node) {
                sentOnCachedFacts.append("pass \(report.number): \(planned)")
            }
            switch (fault, report.number) {
            case (.lostEvents, 1): harness.fleet.loseWatchEvents(on: "n2")
            case (.lostEvents, 2): harness.fleet.recoverLostWatchEvents(on: "n2")
            case (.controllerRestarted, 1):
                watch.stop()
                watch = watched.watch()
            default: break
            }
        }
        watch.stop()
        await watched.agents.stop()
        #expect(harness.violations == [], "\(fault)")
        #expect(sentOnCachedFacts == [], "\(fault)")
        try harness.assertConverged(intent)
        #expect(passes <= ConvergenceBound.passesPerChange, "\(fault): \(passes) passes")
        let rotated = harness.records.values.filter { record in
            record.generations.contains { $0.state == .active && $0.createdAt >= requests[record.id] ?? .distantFuture }
        }
        #expect(
            rotated.count == harness.records.count, "\(fault): \(rotated.count) of \(harness.records.count) rotated")
    }

    /// A harness's fleet behind in-process agents, and the controller's watches of them.
    struct WatchedAgents {
        let harness: ContinuityHarness
        let nodes: [String]
        let agents: InProcessAgents
        let kernels: AgentFleetKernels
        /// Every message a watch took in, for `waitUntilCaughtUp`.
        let events = LoopEvents()

        init(harness: ContinuityHarness, nodes: [String]) async throws {
            self.harness = harness
            self.nodes = nodes
            agents = try await InProcessAgents.start(nodes: nodes, connector: SimulatedConnector(fleet: harness.fleet))
            kernels = AgentFleetKernels(fleet: harness.fleet, agents: agents)
        }

        /// A new controller's watch of every agent, which the harness's passes plan on from now.
        func watch() -> FleetWatch {
            let events = self.events
            let kernels = self.kernels
            let watch = FleetWatch(
                clock: harness.clock, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                observer: { _ in events.changed() })
            watch.follow(Set(nodes)) { node in try await kernels.kernel(for: node) }
            harness.routeThroughAgents(kernels, cache: watch)
            return watch
        }

        /// Waits until `watch`'s copy of every node the fleet has stands at its simulated
        /// kernel's position (each message the watch takes in is an event).
        func waitUntilCaughtUp(_ watch: FleetWatch) async throws {
            let fleet = harness.fleet
            let models = try fleet.state.nodes.keys.sorted().map {
                ($0, try fleet.startWatching(node: $0, reqid: .meshwardDefault))
            }
            await events.wait { models.allSatisfy { node, model in watch.position(of: node) == model.position } }
            for (node, model) in models where watch.position(of: node) != model.position {
                throw HarnessError(message: "the watch of \(node) did not catch up (the test's time limit)")
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
