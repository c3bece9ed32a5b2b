import Foundation
import Kernel
import Logging
import MeshwardCore
import MeshwardTestKit
import Synchronization
import Testing

@testable import Controller
@testable import ReconcilerTestSupport

/// The controller's watch of its fleet (`FleetWatch`): one stream per node into its copy, the
/// cache a pass plans on, drift told to the loop, stale and restarted nodes.
@Suite("FleetWatch", .timeLimit(.minutes(1)))
struct FleetWatchTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A watch over one `ModelKernel` on a manual clock, with its events to wait on.
    final class Harness: Sendable {
        let events: LoopEvents
        let clock: ManualClock
        let kernel = ModelKernel(node: "n1")
        let drifts = Mutex<[String]>([])
        let watch: FleetWatch

        init() {
            let events = LoopEvents()
            self.events = events
            clock = ManualClock(onChange: { events.changed() })
            watch = FleetWatch(clock: clock, logger: FleetWatchTests.logger, observer: { _ in events.changed() })
            watch.onDrift { [weak self] node in
                self?.drifts.withLock { $0.append(node) }
                events.changed()
            }
            let kernel = self.kernel
            watch.follow(["n1"]) { _ in kernel }
        }

        var driftCount: Int { drifts.withLock { $0.count } }

        /// Waits until the watch's copy of n1 is at the kernel's position and stands for it.
        func waitUntilCurrent() async throws {
            let kernel = self.kernel
            let watch = self.watch
            let model = kernel.model
            await events.wait { watch.position(of: "n1")?.epoch == model.epoch }
            let reading = try await kernel.observe()
            watch.adopt(reading, of: "n1")
            await events.wait { watch.cachedObservation(of: "n1")?.watchPosition == kernel.model.position }
        }
    }

    @Test("a node's copy stands for it once its snapshot and a fresh reading are in, and follows its changes")
    func copyFollowsChanges() async throws {
        let harness = Harness()
        harness.kernel.record(.policy(WatchFixtures.policy(2)))
        try await harness.waitUntilCurrent()
        #expect(harness.watch.cachedObservation(of: "n1")?.policies == [WatchFixtures.policy(2)])

        harness.kernel.record(.policy(WatchFixtures.policy(3)))
        let watch = harness.watch
        await harness.events.wait { watch.cachedObservation(of: "n1")?.policies.count == 2 }
        #expect(harness.watch.nodes.first?.live == true)
    }

    @Test("a change this controller did not make is drift, told once; the changes of its own batch are not")
    func driftAndOwnBatch() async throws {
        let harness = Harness()
        try await harness.waitUntilCurrent()
        harness.kernel.record(.policy(WatchFixtures.policy(4)))
        await harness.events.wait { harness.driftCount == 1 }

        // This controller's batch: its change reaches the stream before its answer does.
        harness.watch.sending(to: "n1")
        harness.kernel.record(.policy(WatchFixtures.policy(5)))
        let watch = harness.watch
        let model = harness.kernel.model
        await harness.events.wait { watch.nodes.first.map { _ in watch.position(of: "n1") == model.position } ?? false }
        #expect(
            watch.cachedObservation(of: "n1") == nil, "the copy stands for the node only once the batch is answered")
        harness.watch.applied(to: "n1", at: model.position)
        #expect(watch.cachedObservation(of: "n1")?.policies.count == 2)
        #expect(harness.driftCount == 1, "the batch's own change was taken for drift")
    }

    @Test("a stream silent for three progress intervals makes its node stale; progress makes it live again")
    func staleAfterSilence() async throws {
        let harness = Harness()
        try await harness.waitUntilCurrent()
        harness.clock.advance(by: 30)
        #expect(harness.watch.cachedObservation(of: "n1") != nil, "30 s is three intervals, not more")
        harness.clock.advance(by: 1)
        #expect(harness.watch.cachedObservation(of: "n1") == nil)
        #expect(harness.watch.nodes.first?.live == false)

        harness.kernel.model.sendProgress()
        let watch = harness.watch
        await harness.events.wait { watch.cachedObservation(of: "n1") != nil }
    }

    @Test("an agent restarted (a new epoch) is followed again from a snapshot, and its copy equals the new model")
    func restartedAgentSnapshots() async throws {
        let harness = Harness()
        harness.kernel.record(.policy(WatchFixtures.policy(2)))
        try await harness.waitUntilCurrent()

        harness.kernel.restart(keeping: [.policy(WatchFixtures.policy(6))])
        // The stream ended; the watch opens it again after its first backoff, on the clock.
        let clock = harness.clock
        await harness.events.wait { clock.watching == 1 }
        clock.advance(by: 1)
        try await harness.waitUntilCurrent()
        let copy = try #require(harness.watch.cachedObservation(of: "n1"))
        #expect(copy.policies == [WatchFixtures.policy(6)])
        #expect(copy.watchPosition?.epoch == harness.kernel.model.epoch)
        #expect(harness.watch.nodes.first?.snapshots == 2)
    }

    @Test("a kernel with no watch is polled: the cache never stands for it")
    func unwatchedKernelIsPolled() async throws {
        let clock = ManualClock()
        let events = LoopEvents()
        let watch = FleetWatch(clock: clock, logger: Self.logger, observer: { _ in events.changed() })
        let kernel = PolledKernel(node: "p1")
        watch.follow(["p1"]) { _ in kernel }
        await events.wait { watch.nodes.first?.polled == true }
        watch.adopt(NodeObservation(), of: "p1")
        #expect(watch.cachedObservation(of: "p1") == nil)
    }
}

/// Objects for the watch's tests.
enum WatchFixtures {
    static func policy(_ octet: Int) -> SecurityPolicy {
        let here = IPAddress("198.18.0.1")!
        let there = IPAddress("198.18.0.\(octet)")!
        return SecurityPolicy(
            selector: PolicySelector(source: IPPrefix(host: here), destination: IPPrefix(host: there)),
            direction: .outbound,
            template: PolicyTemplate(
                source: here, destination: there, spi: nil, reqid: .meshwardDefault, isOptional: false))
    }
}

/// A kernel whose objects live in a `KernelWatchModel`, as a watched agent's do: changes are
/// recorded on the model (or held back and announced later), and a restart starts a new model
/// (a new epoch) and ends the old one's streams.
final class ModelKernel: NodeKernel {
    let node: String
    var reqid: Reqid { .meshwardDefault }
    private let state: Mutex<(model: KernelWatchModel, held: [KernelChange])>

    init(node: String) {
        self.node = node
        state = Mutex((KernelWatchModel(node: node), []))
    }

    var model: KernelWatchModel { state.withLock { $0.model } }

    /// Changes the kernel's objects (and its watch model).
    func record(_ change: KernelChange) {
        model.record(change)
    }

    func restart(keeping objects: [KernelChange]) {
        let old = state.withLock { state in
            let old = state.model
            state.model = KernelWatchModel(node: node)
            for change in objects { state.model.record(change) }
            return old
        }
        old.stop(reason: "the agent restarted")
    }

    func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
        model.reading
    }

    func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult] {
        []
    }

    func watch(from position: WatchPosition?) -> AsyncThrowingStream<WatchMessage, any Error>? {
        model.watch(from: position)
    }
}

/// A kernel with no watch.
struct PolledKernel: NodeKernel {
    let node: String
    var reqid: Reqid { .meshwardDefault }

    func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation { NodeObservation() }

    func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult] {
        []
    }
}
