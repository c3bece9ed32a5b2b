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
@testable import ReconcilerTestSupport

/// A pass observes its nodes concurrently, a bounded number at once, each under its own
/// deadline on the reconciler's clock: a kernel that ignores its deadline costs one deadline,
/// never a stuck pass. The tests move that clock past its deadline instead of waiting it out.
@Suite("Observe parallelism")
struct ObserveParallelismTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

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

extension ObserveParallelismTests {
    /// Pairs of nodes, each pair one flow: a first pass sends a batch to many nodes.
    static func pairs(_ count: Int) throws -> FleetIntent {
        try FleetSpec(
            nodes: (1...(2 * count)).map { FleetSpec.node($0, ipv6: false) },
            flows: (1...count).map {
                .init(name: "f\($0)", from: "n\(2 * $0 - 1)", to: "n\(2 * $0)", ports: [], cipher: nil)
            }
        ).compile()
    }

    /// A first pass over `intent` on a fresh simulated fleet, through `kernels`.
    static func firstPass(
        _ intent: FleetIntent, fleet: SimulatedFleet, kernels: any FleetKernels, bound: Int
    ) async throws -> PassReport {
        let reconciler = FleetReconciler(
            store: ScratchGenerationStore(channels: [:]), kernels: kernels, reqid: .meshwardDefault,
            clock: ManualClock(), logger: logger, observeParallelism: bound)
        var records: [ChannelID: ChannelRecord] = [:]
        return try await reconciler.runPass(number: 1, intent: intent, records: &records)
    }

    static func provisioned(_ intent: FleetIntent) -> SimulatedFleet {
        let fleet = SimulatedFleet()
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
        return fleet
    }

    @Test("a pass never has more batches in flight than the bound, and reaches the bound")
    func batchesInFlightNeverExceedTheBound() async throws {
        let intent = try Self.pairs(20)
        let bound = 4
        // The same first pass, ungated, says how many nodes get a batch.
        let probe = Self.provisioned(intent)
        let counted = try await Self.firstPass(
            intent, fleet: probe, kernels: SimulatedFleetKernels(fleet: probe, reqid: .meshwardDefault), bound: bound)
        let batches = Set(counted.results.map(\.planned.node)).count
        #expect(batches > bound)

        let fleet = Self.provisioned(intent)
        let kernels = GatedKernels(fleet: fleet, holdUntilInFlight: bound, total: batches, gatesBatches: true)
        let report = try await Self.firstPass(intent, fleet: fleet, kernels: kernels, bound: bound)
        #expect(Set(report.results.map(\.planned.node)).count == batches)
        #expect(report.failures.isEmpty)
        #expect(kernels.observed == batches)
        #expect(kernels.mostInFlight == bound, "at most \(kernels.mostInFlight) batches at once")
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
    /// Whether the gate counts batches instead of observations.
    private let gatesBatches: Bool

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
        total: Int = 0, gatesBatches: Bool = false
    ) {
        self.gatesBatches = gatesBatches
        self.fleet = fleet
        self.replacing = replacing
        self.hold = hold
        self.total = total
    }

    var mostInFlight: Int { state.withLock { $0.mostInFlight } }
    /// Observations (or batches, when the gate counts those) done.
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
            guard !owner.gatesBatches else { return try await inner.observe(deadline: deadline) }
            await owner.enter()
            defer { owner.leave() }
            return try await inner.observe(deadline: deadline)
        }

        func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult]
        {
            guard owner.gatesBatches else { return try await inner.apply(operations, deadline: deadline) }
            await owner.enter()
            defer { owner.leave() }
            return try await inner.apply(operations, deadline: deadline)
        }
    }
}
