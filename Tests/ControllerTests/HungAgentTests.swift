import AgentTestSupport
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Synchronization
import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

/// A pass observes its nodes behind agents concurrently, each under its own deadline on the
/// reconciler's clock: an agent that never answers costs each pass one deadline, never a stuck
/// pass. The test moves that clock past the hung agent's deadline instead of waiting it out.
@Suite("A hung agent costs a pass one deadline")
struct HungAgentTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Twelve nodes in a ring of flows, so that every node has channels to two others.
    static func ring(_ count: Int = 12) -> FleetSpec {
        FleetSpec(
            nodes: (1...count).map { FleetSpec.node($0, ipv6: false) },
            flows: (1...count).map { index in
                let next = index % count + 1
                return .init(name: "n\(index)-n\(next)", from: "n\(index)", to: "n\(next)", ports: [], cipher: nil)
            })
    }

    @Test(
        "among twelve agents one never answers: each pass ends, that node is unreachable naming it and the deadline, every other node is planned and converges",
        // The limit only ends a stuck run, and leaves room for a loaded machine.
        .timeLimit(.minutes(5)))
    func hungAgentCostsOneDeadline() async throws {
        let intent = try Self.ring().compile()
        let fleet = SimulatedFleet()
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
        let hanging = HangingNode(hung: "n5")
        let agents = try await InProcessAgents.start(
            nodes: intent.nodes.map(\.name), connector: hanging.connector(fleet))
        let events = LoopEvents()
        let clock = ManualClock(onChange: { events.changed() })
        let kernels = CallCounts(AgentFleetKernels(fleet: fleet, agents: agents), events: events)
        let reconciler = FleetReconciler(
            store: ScratchGenerationStore(channels: [:]), kernels: kernels, reqid: .meshwardDefault, clock: clock,
            logger: Self.logger)
        // Each pass, once every node's observation has started and every call but n5's has
        // ended (each call started watching its deadline, and only one still watches: n5's,
        // which cannot end before its deadline), moves the clock to n5's deadline.
        let names = intent.nodes.map(\.name)
        let deadlines = Task {
            var pass = 0
            while !Task.isCancelled {
                pass += 1
                await events.wait { [pass] in
                    names.allSatisfy { kernels.observations(of: $0) == pass }
                        && clock.watchesStarted == kernels.calls && clock.watching == 1
                }
                if Task.isCancelled { return }
                clock.advance(by: FleetReconciler.kernelCallTimeout.timeInterval)
            }
        }
        let run = try await reconciler.converge(intent: intent, waitForDrain: true)
        deadlines.cancel()
        // The hung agent's calls end only now, so that the agents can shut down.
        hanging.gate.open()
        await agents.stop()

        #expect(run.outcome == .blocked)
        let report = try #require(run.passes.first)
        #expect(run.passes.allSatisfy { Array($0.unreachable.keys) == ["n5"] })
        let reason = try #require(report.unreachable["n5"])
        #expect(reason.contains("node n5"), "\(reason)")
        #expect(reason.contains("deadline of 30 s"), "\(reason)")
        #expect(report.observed == intent.nodes.map(\.name).filter { $0 != "n5" }.sorted())
        let others = Set(intent.nodes.map(\.name)).subtracting(["n5"])
        #expect(Set(run.passes.flatMap { $0.results.map(\.planned.node) }) == others)
        #expect(run.passes.allSatisfy { $0.failures.isEmpty })
        let blocked = Set(try #require(run.last).plan.blocked.map(\.channel))
        let touchingHung = Set(intent.channels.map(\.id).filter { $0.from == "n5" || $0.to == "n5" })
        #expect(blocked == touchingHung)
        let state = fleet.state
        for node in others {
            #expect(!(state.nodes[node]?.securityAssociations.isEmpty ?? true), "\(node) holds no SA")
        }
    }
}

/// Serves a simulated fleet, except that `hung`'s observation never answers while `gate` is
/// closed (whatever its deadline or cancellation say, as a hung agent does).
final class HangingNode: Sendable {
    let hung: String
    let gate = TestGate()

    init(hung: String) { self.hung = hung }

    func connector(_ fleet: SimulatedFleet) -> InterceptingConnector {
        InterceptingConnector(
            fleet: fleet,
            observe: { kernel, deadline in
                guard kernel.node == self.hung else { return try await kernel.observe(deadline: deadline) }
                await self.gate.wait()
                throw KernelError.unreachable(node: kernel.node, reason: "released by the test")
            })
    }
}

/// Kernels that count, before passing each on, the calls a reconciler races against their
/// deadline (each asks for its node's kernel once) and each node's observations, and tell
/// `events` of each.
final class CallCounts: FleetKernels {
    private let base: any FleetKernels
    private let events: LoopEvents
    private let counts = Mutex<(calls: Int, observations: [String: Int])>((0, [:]))

    init(_ base: any FleetKernels, events: LoopEvents) {
        self.base = base
        self.events = events
    }

    var knownNodes: Set<String> { base.knownNodes }
    var calls: Int { counts.withLock { $0.calls } }
    func observations(of node: String) -> Int { counts.withLock { $0.observations[node] ?? 0 } }

    func kernel(for node: String) async throws -> any NodeKernel {
        counts.withLock { $0.calls += 1 }
        events.changed()
        return Observed(inner: try await base.kernel(for: node), owner: self)
    }

    func persist() throws { try base.persist() }

    func close() async { await base.close() }

    fileprivate func observing(_ node: String) {
        counts.withLock { $0.observations[node, default: 0] += 1 }
        events.changed()
    }

    struct Observed: NodeKernel {
        let inner: any NodeKernel
        let owner: CallCounts
        var node: String { inner.node }
        var reqid: Reqid { inner.reqid }

        func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
            owner.observing(node)
            return try await inner.observe(deadline: deadline)
        }

        func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult]
        {
            try await inner.apply(operations, deadline: deadline)
        }
    }
}
