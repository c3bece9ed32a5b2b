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

/// Planning on the cache (design.md §12): the cache decides whether a pass has work; acting
/// needs fresh facts. A pass with nothing to do calls no kernel; a pass that would act reads
/// afresh every node its plan touches and their peers, plans again, and sends only to nodes so
/// read.
@Suite("A pass plans on the cache and acts on fresh facts")
struct CachedPlanningTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A converged three-tier fleet, a cache holding each node's reading, and a reconciler that
    /// plans on it and counts the kernels it reads.
    struct Converged {
        let fixture = PlannerFixture()
        let intent: FleetIntent
        let kernels: CountingKernels
        let cache = FixedCache()
        let reconciler: FleetReconciler

        init(readsAfreshBeforeActing: Bool = true) async throws {
            intent = try FleetSpec.threeTier.compile()
            #expect(try await fixture.apply(intent) == .converged)
            kernels = CountingKernels(fleet: fixture.fleet)
            reconciler = FleetReconciler(
                store: fixture.store, kernels: kernels, reqid: .meshwardDefault, clock: fixture.clock,
                logger: CachedPlanningTests.logger, cache: cache, readsAfreshBeforeActing: readsAfreshBeforeActing)
            for node in ["n1", "n2", "n3"] { cache.set(node, try fixture.observe(node)) }
        }

        func pass() async throws -> PassReport {
            var records = try await fixture.store.loadChannels()
            return try await reconciler.runPass(number: 1, intent: intent, records: &records, planningOnCache: true)
        }
    }

    @Test("a pass on a cache that stands for every node of a converged fleet reads no kernel and sends nothing")
    func steadyPassReadsNothing() async throws {
        let fleet = try await Converged()
        let report = try await fleet.pass()
        #expect(fleet.kernels.observed == [:], "read \(fleet.kernels.observed)")
        #expect(report.results.isEmpty)
        #expect(report.freshlyRead.isEmpty)
        #expect(report.plan.isConverged)
    }

    @Test(
        "a node wiped out of band and seen so by the cache is read afresh with its peer, not the rest; every batch goes to a node read afresh, and the fleet converges again on the cache"
    )
    func driftReadsTouchedNodesAndPeers() async throws {
        let fleet = try await Converged()
        fleet.fixture.fleet.wipe(node: "n3")
        fleet.cache.set("n3", try fleet.fixture.observe("n3"))

        let report = try await fleet.pass()
        #expect(Set(fleet.kernels.observed.keys) == ["n2", "n3"], "read \(fleet.kernels.observed)")
        #expect(!report.results.isEmpty)
        for (planned, _) in report.results {
            #expect(report.freshlyRead.contains(planned.node), "\(planned) was planned on cached facts")
        }

        fleet.kernels.reset()
        let run = try await fleet.reconciler.converge(intent: fleet.intent, waitForDrain: true, planningOnCache: true)
        #expect(run.outcome == .converged)
        fleet.fixture.records = try await fleet.fixture.store.loadChannels()
        #expect(try fleet.fixture.missingExpectedObjects(fleet.intent) == [])
        #expect(fleet.kernels.observed["n1"] == nil, "n1 was read: \(fleet.kernels.observed)")
    }

    @Test(
        "a cache behind the kernel (a node's changes not yet seen) plans work, the fresh read finds none, and nothing is sent"
    )
    func staleCacheSendsNothing() async throws {
        let fleet = try await Converged()
        // The cache still shows n3 empty: the watch's events of its SAs and policies are late.
        fleet.cache.set("n3", NodeObservation())
        let report = try await fleet.pass()
        #expect(fleet.kernels.observed["n3"] == 1)
        #expect(report.results.isEmpty, "sent \(report.results.map(\.planned))")
        #expect(report.issued.isEmpty)
        #expect(report.plan.isConverged)
    }

    @Test(
        "negative control: with the fresh reads before acting switched off, the same stale cache makes the pass send to a node it did not read afresh"
    )
    func negativeControlActsOnCachedFacts() async throws {
        let fleet = try await Converged(readsAfreshBeforeActing: false)
        fleet.cache.set("n3", NodeObservation())
        let report = try await fleet.pass()
        #expect(report.results.contains { !report.freshlyRead.contains($0.planned.node) })
    }
}

/// A cache that stands for the nodes the test gives it a reading of, and takes in every fresh
/// reading the pass makes.
final class FixedCache: ObservationCache {
    private let readings = Mutex<[String: NodeObservation]>([:])

    func set(_ node: String, _ reading: NodeObservation) {
        readings.withLock { $0[node] = reading }
    }

    func cachedObservation(of node: String) -> NodeObservation? {
        readings.withLock { $0[node] }
    }

    func adopt(_ observation: NodeObservation, of node: String) {
        readings.withLock { $0[node] = observation }
    }

    func sending(to node: String) {
        readings.withLock { $0[node] = nil }
    }

    func applied(to node: String, at position: WatchPosition?) {
        // Until read again, the node's reading is not known.
        readings.withLock { $0[node] = nil }
    }
}

/// The simulated fleet's kernels, counting the observations of each node.
final class CountingKernels: FleetKernels {
    private let inner: SimulatedFleetKernels
    private let counts = Mutex<[String: Int]>([:])

    init(fleet: SimulatedFleet) {
        inner = SimulatedFleetKernels(fleet: fleet, reqid: .meshwardDefault)
    }

    var observed: [String: Int] { counts.withLock { $0 } }
    func reset() { counts.withLock { $0 = [:] } }

    var knownNodes: Set<String> { inner.knownNodes }

    func kernel(for node: String) async throws -> any NodeKernel {
        CountedKernel(inner: try await inner.kernel(for: node), owner: self)
    }

    fileprivate func count(_ node: String) {
        counts.withLock { $0[node, default: 0] += 1 }
    }

    func persist() throws { try inner.persist() }
}

/// One node's kernel, counting its observations.
struct CountedKernel: NodeKernel {
    let inner: any NodeKernel
    let owner: CountingKernels

    var node: String { inner.node }
    var reqid: Reqid { inner.reqid }

    func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
        owner.count(node)
        return try await inner.observe(deadline: deadline)
    }

    func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult] {
        try await inner.apply(operations, deadline: deadline)
    }
}
