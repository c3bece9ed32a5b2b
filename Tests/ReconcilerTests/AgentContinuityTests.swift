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

@testable import Reconciler

/// The continuity suite once more with every node behind an in-process agent (real gRPC and
/// mutual TLS on loopback, the agents serving the harness's simulated fleet): the transport
/// changes nothing the staging guarantees.
@Suite("Continuity behind agents")
struct AgentContinuityTests {
    static let nodes = ["n1", "n2", "n3", "n4"]

    @Test(
        "with every node behind an agent, a converged fleet goes through one change without a drop in every reachable state",
        arguments: ContinuityTests.changes)
    func change(_ change: ContinuityTests.Change) async throws {
        let harness = ContinuityHarness(seed: 1)
        let agents = try await InProcessAgents.start(
            nodes: Self.nodes, connector: SimulatedConnector(fleet: harness.fleet))
        harness.routeThroughAgents(AgentFleetKernels(fleet: harness.fleet, agents: agents))
        var spec = ContinuityTests.threeTier
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
        "a pass over nodes behind agents measures when each agent's certificate expires, per node, as its handshake showed it"
    )
    func passMeasuresAgentCertificateExpiry() async throws {
        let fleet = SimulatedFleet()
        let intent = try PlannerReviewTests.pair().compile()
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

    @Test("a batch whose reply a slow agent lost is journaled indeterminate, and the next pass does not resend it")
    func lostReply() async throws {
        let fleet = SimulatedFleet()
        let intent = try PlannerReviewTests.pair().compile()
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
        let slow = SlowAfterApplyConnector(fleet: fleet)
        let agents = try await InProcessAgents.start(nodes: intent.nodes.map(\.name), connector: slow)
        let store = ScratchGenerationStore(channels: [:])
        let reconciler = FleetReconciler(
            store: store, kernels: AgentFleetKernels(fleet: fleet, agents: agents), reqid: .meshwardDefault,
            clock: ManualClock(), logger: .init(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            callTimeout: .seconds(4))
        var records: [ChannelID: ChannelRecord] = [:]
        slow.delay(true)
        let first = try await reconciler.runPass(number: 1, intent: intent, records: &records)
        slow.delay(false)
        #expect(!first.results.isEmpty, "unreachable: \(first.unreachable)")
        #expect(first.results.allSatisfy { if case .indeterminate = $0.outcome { true } else { false } })
        #expect(store.journal.allSatisfy { $0.result.hasPrefix("indeterminate") && $0.appliedAt == nil })
        let second = try await reconciler.runPass(number: 2, intent: intent, records: &records)
        let resent = Set(first.results.map(\.planned)).intersection(second.results.map(\.planned))
        #expect(resent.isEmpty, "resent: \(resent)")
        #expect(!second.results.isEmpty)
        await agents.stop()
    }
}

/// Serves a simulated fleet whose batches take effect and then, while `delay` is on, answer
/// only after six seconds: the controller's four-second deadline passes with the work done.
final class SlowAfterApplyConnector: KernelConnector {
    let fleet: SimulatedFleet
    private let slow = Mutex(false)

    init(fleet: SimulatedFleet) { self.fleet = fleet }

    func delay(_ on: Bool) { slow.withLock { $0 = on } }
    var isSlow: Bool { slow.withLock { $0 } }

    var schemes: Set<NodeEndpoint.Scheme> { [.sim] }

    func connect(node: String, endpoint: NodeEndpoint, reqid: Reqid) async throws -> any NodeKernel {
        SlowKernel(inner: fleet.kernel(for: node, reqid: reqid), owner: self)
    }

    struct SlowKernel: NodeKernel {
        let inner: SimulatedKernel
        let owner: SlowAfterApplyConnector
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
            let results = try await inner.apply(operations, deadline: deadline)
            if owner.isSlow { try await Task.sleep(for: .seconds(6)) }
            return results
        }
    }
}
