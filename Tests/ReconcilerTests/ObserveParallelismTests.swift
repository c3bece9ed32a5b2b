import AgentTestSupport
import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Synchronization
import Testing

@testable import Reconciler

/// A pass observes its nodes concurrently, a bounded number at once, each under its own
/// deadline on the reconciler's clock: a hung node costs one deadline, never a stuck pass. The
/// tests move that clock past a hung node's deadline instead of waiting it out.
@Suite("Observe parallelism")
struct ObserveParallelismTests {
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
        #expect(Set(run.passes.flatMap(\.plan.operations.keys)) == others)
        #expect(run.passes.allSatisfy { $0.failures.isEmpty })
        let blocked = Set(try #require(run.last).plan.blocked.map(\.channel))
        let touchingHung = Set(intent.channels.map(\.id).filter { $0.from == "n5" || $0.to == "n5" })
        #expect(blocked == touchingHung)
        let state = fleet.state
        for node in others {
            #expect(!(state.nodes[node]?.securityAssociations.isEmpty ?? true), "\(node) holds no SA")
        }
    }

    @Test(
        "a kernel that ignores its deadline and cancellation still costs the pass only its deadline",
        .timeLimit(.minutes(2)))
    func kernelIgnoringItsDeadline() async throws {
        let fleet = SimulatedFleet()
        let nodes = (1...8).map { "n\($0)" }
        fleet.withState { state in
            for node in nodes { state.addNode(node, addresses: []) }
        }
        let stuck = StuckKernel(node: "n3")
        let kernels = GatedKernels(fleet: fleet, replacing: ["n3": stuck])
        let events = LoopEvents()
        let clock = ManualClock(onChange: { events.changed() })
        let reconciler = FleetReconciler(
            store: ScratchGenerationStore(channels: [:]), kernels: kernels, reqid: .meshwardDefault,
            clock: clock, logger: Self.logger, callTimeout: .seconds(2))
        let observing = Task { await reconciler.observe(Set(nodes)) }
        // Every observation watches its deadline; all but n3's answered.
        await events.wait { clock.watchesStarted == nodes.count && clock.watching == 1 }
        clock.advance(by: 2)
        let (observations, unreachable, _) = await observing.value
        stuck.gate.open()

        #expect(Set(observations.keys) == Set(nodes).subtracting(["n3"]))
        #expect(Array(unreachable.keys) == ["n3"])
        #expect(
            unreachable["n3"] == "node n3 did not answer before its deadline of 2 s for one observation",
            "\(unreachable)")
    }

    @Test(
        "observing a fleet never has more nodes in flight than the bound, and reaches the bound",
        arguments: [(nodes: 40, bound: 4), (nodes: 200, bound: FleetReconciler.observeParallelism)])
    func inFlightNeverExceedsTheBound(_ shape: (nodes: Int, bound: Int)) async throws {
        let fleet = SimulatedFleet()
        let nodes = (1...shape.nodes).map { "n\($0)" }
        fleet.withState { state in
            for node in nodes { state.addNode(node, addresses: []) }
        }
        let kernels = GatedKernels(fleet: fleet, holdUntilInFlight: shape.bound, total: shape.nodes)
        let reconciler = FleetReconciler(
            store: ScratchGenerationStore(channels: [:]), kernels: kernels, reqid: .meshwardDefault,
            clock: ManualClock(), logger: Self.logger, observeParallelism: shape.bound)
        let (observations, unreachable, _) = await reconciler.observe(Set(nodes))

        #expect(observations.count == shape.nodes)
        #expect(unreachable.isEmpty)
        #expect(kernels.observed == shape.nodes)
        #expect(kernels.mostInFlight == shape.bound, "at most \(kernels.mostInFlight) at once")
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

/// Holds every waiter until the test opens it; opened, it lets every later one through.
final class TestGate: Sendable {
    private let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiting = state.withLock { state in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Returns once the gate is open; ignores cancellation.
    func wait() async {
        await withCheckedContinuation { continuation in
            let open = state.withLock { state in
                if !state.open { state.waiting.append(continuation) }
                return state.open
            }
            if open { continuation.resume() }
        }
    }
}

/// A kernel whose observation ignores both its deadline and cancellation: it returns only once
/// the test opens its gate.
final class StuckKernel: NodeKernel {
    let node: String
    var reqid: Reqid { .meshwardDefault }
    let gate = TestGate()

    init(node: String) { self.node = node }

    func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
        await gate.wait()
        throw KernelError.unreachable(node: node, reason: "released by the test")
    }

    func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult] {
        throw KernelError.unreachable(node: node, reason: "a stuck kernel applies nothing")
    }
}

/// The nodes of a simulated fleet, with a count of the observations in flight. With
/// `holdUntilInFlight`, each observation waits until that many are in flight at once (or every
/// one has started), so that a bound that holds is also reached: the count, not a timing, decides.
final class GatedKernels: FleetKernels {
    private let fleet: SimulatedFleet
    private let replacing: [String: any NodeKernel]
    private let hold: Int?
    private let total: Int

    private struct State {
        var inFlight = 0
        var mostInFlight = 0
        var started = 0
        var observed = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    init(
        fleet: SimulatedFleet, replacing: [String: any NodeKernel] = [:], holdUntilInFlight hold: Int? = nil,
        total: Int = 0
    ) {
        self.fleet = fleet
        self.replacing = replacing
        self.hold = hold
        self.total = total
    }

    var mostInFlight: Int { state.withLock { $0.mostInFlight } }
    var observed: Int { state.withLock { $0.observed } }
    var knownNodes: Set<String> { Set(fleet.withState { $0.nodes.keys }) }

    func kernel(for node: String) async throws -> any NodeKernel {
        if let replaced = replacing[node] { return replaced }
        return Counted(inner: fleet.kernel(for: node, reqid: .meshwardDefault), owner: self)
    }

    func persist() throws {}

    /// Counts one observation in, and waits while the gate is closed.
    fileprivate func enter() async {
        await withCheckedContinuation { continuation in
            let released = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.inFlight += 1
                state.started += 1
                state.mostInFlight = max(state.mostInFlight, state.inFlight)
                state.waiting.append(continuation)
                guard let hold else { return state.waiting.popLast().map { [$0] } ?? [] }
                guard state.inFlight >= hold || state.started >= total else { return [] }
                defer { state.waiting = [] }
                return state.waiting
            }
            for waiter in released { waiter.resume() }
        }
    }

    fileprivate func leave() {
        state.withLock { state in
            state.inFlight -= 1
            state.observed += 1
        }
    }

    struct Counted: NodeKernel {
        let inner: SimulatedKernel
        let owner: GatedKernels
        var node: String { inner.node }
        var reqid: Reqid { inner.reqid }

        func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
            await owner.enter()
            defer { owner.leave() }
            return try await inner.observe(deadline: deadline)
        }

        func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult]
        {
            try await inner.apply(operations, deadline: deadline)
        }
    }
}
