import Foundation
import Kernel
import Logging
import MeshwardCore
import MeshwardTestKit
import Reconciler
import Synchronization
import Testing

@testable import Controller
@testable import ReconcilerTestSupport

/// The session's kept kernels of `local` and `netns:` nodes (`LocalKernelPool`): one per node for
/// its endpoint and reqid, closed when either changes or the node leaves, and the progress that
/// keeps an unchanged in-process kernel from looking stale to the watch. The kernels here are
/// in-memory watch models (`KeptModelKernel`); the tests of the real netlink kernels in
/// namespaces are `WatchedNamespaceLoopTests`. Three minutes each, as the loop over watched agents
/// has: the whole suite running beside them on two cores can hold the watch's tasks back for more
/// than a minute.
@Suite("Kept local kernels", .timeLimit(.minutes(3)))
struct LocalKernelPoolTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Every kernel the pool opened, in order, with what it was opened for.
    final class Opened: Sendable {
        private let kernels = Mutex<[(endpoint: NodeEndpoint, reqid: Reqid, kernel: KeptModelKernel)]>([])

        var all: [(endpoint: NodeEndpoint, reqid: Reqid, kernel: KeptModelKernel)] { kernels.withLock { $0 } }

        func open(_ node: String, _ endpoint: NodeEndpoint, _ reqid: Reqid) -> KeptModelKernel {
            let kernel = KeptModelKernel(node: node, reqid: reqid)
            kernels.withLock { $0.append((endpoint, reqid, kernel)) }
            return kernel
        }
    }

    static func pool(_ opened: Opened, clock: any ReconcilerClock = ManualClock()) -> LocalKernelPool {
        LocalKernelPool(
            clock: clock, progressInterval: .seconds(10), logger: logger,
            open: { node, endpoint, reqid in opened.open(node, endpoint, reqid) })
    }

    @Test(
        "a node's kernel is opened once for its endpoint and reqid and kept across uses; another endpoint or reqid closes it and opens another"
    )
    func keptPerEndpointAndReqid() async throws {
        let opened = Opened()
        let pool = Self.pool(opened)
        let first = try await pool.connect(node: "a", endpoint: .namespace("ns-a"), reqid: .meshwardDefault)
        let again = try await pool.connect(node: "a", endpoint: .namespace("ns-a"), reqid: .meshwardDefault)
        #expect(opened.all.count == 1)
        #expect((first as? KeptModelKernel) === (again as? KeptModelKernel))

        let moved = try await pool.connect(node: "a", endpoint: .namespace("ns-a2"), reqid: .meshwardDefault)
        #expect(opened.all.count == 2)
        #expect(opened.all[0].kernel.isClosed, "the kernel of the old endpoint was not closed")
        #expect((moved as? KeptModelKernel) === opened.all[1].kernel)

        _ = try await pool.connect(node: "a", endpoint: .namespace("ns-a2"), reqid: Reqid(0x1234))
        #expect(opened.all.count == 3)
        #expect(opened.all[1].kernel.isClosed, "the kernel of the old reqid was not closed")
        #expect(!opened.all[2].kernel.isClosed)
        #expect(pool.kernelsOpened == 3)
        await pool.close()
        #expect(opened.all[2].kernel.isClosed)
    }

    @Test("the kernels of uses through EndpointKernels are the pool's: closing the use leaves them open and kept")
    func endpointKernelsUseTheKeptKernels() async throws {
        let opened = Opened()
        let pool = Self.pool(opened)
        for _ in 0..<3 {
            let kernels = EndpointKernels(
                endpoints: ["a": .namespace("ns-a"), "b": .local], simulated: nil, simulatedFile: nil,
                reqid: .meshwardDefault, local: pool, logger: Self.logger)
            _ = try await kernels.kernel(for: "a")
            _ = try await kernels.kernel(for: "b")
            await kernels.close()
        }
        #expect(opened.all.map(\.endpoint) == [.namespace("ns-a"), .local])
        #expect(opened.all.allSatisfy { !$0.kernel.isClosed })
        await pool.close()
    }

    @Test(
        "keep(only:) closes the kernels of nodes that left the fleet and of nodes whose endpoint changed, and keeps the rest"
    )
    func keepOnlyClosesTheDeparted() async throws {
        let opened = Opened()
        let pool = Self.pool(opened)
        for (node, endpoint) in [("a", NodeEndpoint.namespace("ns-a")), ("b", .namespace("ns-b")), ("c", .local)] {
            _ = try await pool.connect(node: node, endpoint: endpoint, reqid: .meshwardDefault)
        }
        await pool.keep(
            only: ["a": .namespace("ns-a"), "b": .namespace("ns-b-new"), "d": .sim], reqid: .meshwardDefault)
        let closed = opened.all.filter(\.kernel.isClosed).map(\.kernel.node)
        #expect(closed.sorted() == ["b", "c"])
        #expect(try await pool.watchedKernel(for: "d") == nil, "a sim node is not the pool's to watch")
        #expect(try await pool.watchedKernel(for: "c") == nil, "a node that left is not watched")
        let b = try #require(try await pool.watchedKernel(for: "b") as? KeptModelKernel)
        #expect(opened.all.last?.endpoint == .namespace("ns-b-new"))
        #expect(b === opened.all.last?.kernel)
        #expect(b.watchStarts == 1)
        await pool.close()
    }

    @Test(
        "an unchanged kept kernel stays live in the watch for ten progress intervals: the pool sends its streams a progress each interval on the clock"
    )
    func progressKeepsAnUnchangedKernelLive() async throws {
        let events = LoopEvents()
        let clock = ManualClock(onChange: { events.changed() })
        let opened = Opened()
        let pool = Self.pool(opened, clock: clock)
        let watch = FleetWatch(clock: clock, logger: Self.logger, observer: { _ in events.changed() })
        await pool.keep(only: ["a": .namespace("ns-a")], reqid: .meshwardDefault)
        watch.follow(["a"]) { node in
            guard let kernel = try await pool.watchedKernel(for: node) else {
                throw KernelError.unreachable(node: node, reason: "not a local node")
            }
            return kernel
        }
        await events.wait { watch.position(of: "a") != nil }
        let kernel = try #require(opened.all.first?.kernel)
        watch.adopt(try await kernel.observe(), of: "a")
        #expect(watch.cachedObservation(of: "a") != nil)
        let start = clock.now()

        for interval in 1...10 {
            // The progress timer waits for the clock's next interval before the clock moves on.
            let due = clock.now().addingTimeInterval(10)
            await events.wait { clock.nextWatchDeadline == due }
            clock.advance(by: 10)
            await events.wait { watch.nodes.first?.lastMessageAt == due }
            #expect(watch.cachedObservation(of: "a") != nil, "stale after \(interval) intervals without a change")
        }
        #expect(clock.now().timeIntervalSince(start) == 100)
        #expect(watch.nodes.first?.live == true)
        #expect(watch.nodes.first?.digestMismatches == 0)
        watch.stop()
        await pool.close()
    }
}

/// A kernel whose objects live in a `KernelWatchModel` and that says whether it was closed and
/// how often its watch was started: what the pool keeps, in memory.
final class KeptModelKernel: WatchedKernel {
    let node: String
    let reqid: Reqid
    let model: KernelWatchModel
    private let state = Mutex((closed: false, watchStarts: 0))

    init(node: String, reqid: Reqid) {
        self.node = node
        self.reqid = reqid
        model = KernelWatchModel(node: node)
    }

    var isClosed: Bool { state.withLock { $0.closed } }
    var watchStarts: Int { state.withLock { $0.watchStarts } }

    func startWatching() async throws -> KernelWatchModel {
        state.withLock { $0.watchStarts += 1 }
        return model
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

    func close() async {
        state.withLock { $0.closed = true }
        model.stop(reason: "closed")
    }
}
