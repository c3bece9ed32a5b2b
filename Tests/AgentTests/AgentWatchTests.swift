import Agent
import AgentTestSupport
import AgentWire
import Foundation
import Identity
import Kernel
import KernelSimulator
import MeshwardCore
import Synchronization
import Testing

/// The agent's watch stream (wire version 2) over real gRPC and mutual TLS on loopback, from
/// agents whose kernels are simulated: what a controller receives, in what order, and how each
/// stream ends. No test sleeps: each waits for the messages it expects (a test that would hang
/// fails at the suite's time limit).
@Suite("the agent's watch stream", .timeLimit(.minutes(1)))
struct AgentWatchTests {
    typealias Messages = AsyncThrowingStream<WatchMessage, any Error>.Iterator

    /// The next `count` messages of a stream, in order; fails when it ends first.
    static func next(_ count: Int, of messages: inout Messages) async throws -> [WatchMessage] {
        var read: [WatchMessage] = []
        while read.count < count {
            guard let message = try await messages.next() else {
                Issue.record("the stream ended after \(read.count) of \(count) messages")
                return read
            }
            read.append(message)
        }
        return read
    }

    /// Reads a snapshot to its end: its objects, where it stood, and the boot ID it named.
    static func snapshot(of messages: inout Messages) async throws -> (WatchedObjects, WatchPosition, String?) {
        var objects = WatchedObjects()
        while let message = try await messages.next() {
            switch message {
            case .snapshot(let change): objects.apply(change)
            case .snapshotEnd(let position, let bootID): return (objects, position, bootID)
            case .change, .progress:
                Issue.record("\(message) came before the snapshot's end")
            }
        }
        Issue.record("the stream ended before the snapshot's end")
        return (objects, WatchPosition(epoch: 0, seq: 0), nil)
    }

    /// How `messages` ended: the error, or nil for a normal end; the messages read before it.
    static func ending(of messages: inout Messages) async -> (read: [WatchMessage], error: (any Error)?) {
        var read: [WatchMessage] = []
        do {
            while let message = try await messages.next() { read.append(message) }
            return (read, nil)
        } catch {
            return (read, error)
        }
    }

    /// Expects `kernel`'s watch to end at once, before any message, as unsupported by `node`
    /// with a reason that contains `reason`.
    static func expectUnsupported(_ kernel: some NodeKernel, node: String, because reason: String) async throws {
        var messages = try #require(kernel.watch(from: nil)).makeAsyncIterator()
        let (read, error) = await ending(of: &messages)
        #expect(read.isEmpty)
        guard case .unsupported(let unsupported, let said) = error as? KernelWatchError else {
            Issue.record("the watch ended with \(String(describing: error)), not unsupported")
            return
        }
        #expect(unsupported == node)
        #expect(said.contains(reason), "\(said)")
    }

    static func association(_ spi: UInt32) throws -> SecurityAssociation {
        AgentFixtures.association(spi: spi, key: try AgentFixtures.key())
    }

    static let outbound = SecurityPolicy(
        selector: PolicySelector(
            source: IPPrefix(host: AgentFixtures.alpha), destination: IPPrefix(host: AgentFixtures.bravo)),
        direction: .outbound,
        template: PolicyTemplate(family: .ipv4, spi: SPI(0x1000), reqid: .meshwardDefault, isOptional: false))

    @Test(
        "a watch from nothing gets a snapshot equal to a fresh observation's objects, then an apply's changes with consecutive seqs, the last one the seq the apply answered"
    )
    func snapshotThenChanges() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), clock: SteppedClock())
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        _ = try await kernel.apply([.addSA(try Self.association(0x1000)), .addPolicy(Self.outbound)])
        let observation = try await kernel.observe()
        let observed = WatchedObjects(
            securityAssociations: observation.securityAssociations, policies: observation.policies)

        var messages = try #require(kernel.watch(from: nil)).makeAsyncIterator()
        let (snapshot, end, bootID) = try await Self.snapshot(of: &messages)
        #expect(snapshot == observed)
        #expect(snapshot.count == 2)
        #expect(bootID == agents.servers["a"]?.bootID)
        #expect(observation.watchPosition == end)

        let added = [try Self.association(0x2000), try Self.association(0x3000)]
        let batch = try await kernel.applyReportingPosition(
            added.map { .addSA($0) } + [.deleteSA(observation.securityAssociations[0].identifier)],
            deadline: .now + .seconds(20))
        #expect(batch.results.map(\.outcome) == [.applied, .applied, .applied])
        let changes = try await Self.next(3, of: &messages)
        #expect(
            changes == [
                .change(seq: end.seq + 1, .securityAssociation(added[0].watched)),
                .change(seq: end.seq + 2, .securityAssociation(added[1].watched)),
                .change(seq: end.seq + 3, .securityAssociationDeleted(observation.securityAssociations[0].identifier)),
            ])
        #expect(batch.position == WatchPosition(epoch: end.epoch, seq: end.seq + 3))
        for change in changes {
            guard case .change(_, .securityAssociation(let sa)) = change else { continue }
            #expect(sa.key.material == nil, "a watch carried key bytes")
        }
    }

    @Test("a watch resumed from a position still in the ring replays exactly the changes after it, and no snapshot")
    func resumeFromRing() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), clock: SteppedClock())
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        _ = try await kernel.apply([.addSA(try Self.association(0x1000))])
        var first = try #require(kernel.watch(from: nil)).makeAsyncIterator()
        let (_, left, _) = try await Self.snapshot(of: &first)

        let missed = [try Self.association(0x2000), try Self.association(0x3000)]
        let batch = try await kernel.applyReportingPosition(
            missed.map { .addSA($0) } + [.addPolicy(Self.outbound)], deadline: .now + .seconds(20))
        var resumed = try #require(kernel.watch(from: left)).makeAsyncIterator()
        let replayed = try await Self.next(3, of: &resumed)
        #expect(
            replayed == [
                .change(seq: left.seq + 1, .securityAssociation(missed[0].watched)),
                .change(seq: left.seq + 2, .securityAssociation(missed[1].watched)),
                .change(seq: left.seq + 3, .policy(Self.outbound)),
            ])
        #expect(batch.position == WatchPosition(epoch: left.epoch, seq: left.seq + 3))
    }

    @Test("a watch from a position of another epoch (an agent that started again) gets a snapshot of this epoch")
    func otherEpochGetsSnapshot() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), clock: SteppedClock())
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        let batch = try await kernel.applyReportingPosition(
            [.addSA(try Self.association(0x1000))], deadline: .now + .seconds(20))
        let now = try #require(batch.position)
        let observation = try await kernel.observe()

        var messages = try #require(kernel.watch(from: WatchPosition(epoch: now.epoch &+ 1, seq: now.seq)))
            .makeAsyncIterator()
        let (snapshot, end, _) = try await Self.snapshot(of: &messages)
        #expect(end == now)
        #expect(
            snapshot
                == WatchedObjects(
                    securityAssociations: observation.securityAssociations, policies: observation.policies))
    }

    @Test(
        "a progress comes when the injected clock passes the interval, at the receiver's position, with the digest of the receiver's copy"
    )
    func progressOnTheInjectedClock() async throws {
        let fleet = AgentFixtures.fleet()
        let clock = SteppedClock()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), clock: clock)
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        _ = try await kernel.apply([.addSA(try Self.association(0x1000)), .addPolicy(Self.outbound)])
        var messages = try #require(kernel.watch(from: nil)).makeAsyncIterator()
        var (copy, position, _) = try await Self.snapshot(of: &messages)
        _ = try await kernel.apply([.addSA(try Self.association(0x2000))])
        for message in try await Self.next(1, of: &messages) {
            guard case .change(let seq, let change) = message else {
                Issue.record("\(message) is not the apply's change")
                continue
            }
            copy.apply(change)
            position.seq = seq
        }

        await clock.waitForSleepers()
        clock.advance(by: .seconds(12))
        let progress = try await Self.next(1, of: &messages)
        guard case .progress(let report) = progress.first else {
            Issue.record("\(progress) is not a progress")
            return
        }
        #expect(report.position == position)
        #expect(report.digest == copy.digest)
        #expect(report.digest == WatchDigest.of(copy.upserts))
        #expect(report.bootID == agents.servers["a"]?.bootID)
    }

    @Test(
        "a stream whose receiver does not read ends in an overflow after every message it queued, and a watch from the overflow's position completes the sequence"
    )
    func overflowThenResume() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), clock: SteppedClock())
        defer { Task { await agents.stop() } }
        let (overflows, overflowed) = AsyncStream.makeStream(of: KernelWatchError.self)
        let kernel = try AgentKernel(
            node: "a", host: "127.0.0.1", port: UInt16(try #require(agents.ports["a"])), reqid: .meshwardDefault,
            credentials: agents.controller, cluster: agents.cluster, epoch: { 1 }, executor: agents.executor,
            watchCapacity: 6, onWatchEnded: { overflowed.yield($0) }, logger: InProcessAgents.quietLogger)
        var messages = try #require(kernel.watch(from: nil)).makeAsyncIterator()
        let (_, start, _) = try await Self.snapshot(of: &messages)

        let added = try (1...10).map { try Self.association(0x1000 + UInt32($0)) }
        _ = try await kernel.apply(added.map { .addSA($0) })
        var ends = overflows.makeAsyncIterator()
        let end = await ends.next()
        guard case .overflow(_, let capacity, let position) = end else {
            Issue.record("the stream ended with \(String(describing: end)), not an overflow")
            return
        }
        #expect(capacity == 6)
        #expect(position == WatchPosition(epoch: start.epoch, seq: start.seq + 6))
        let (queued, error) = await Self.ending(of: &messages)
        #expect((error as? KernelWatchError) == end)
        var resumed = try #require(kernel.watch(from: position)).makeAsyncIterator()
        let rest = try await Self.next(4, of: &resumed)
        let expected = added.enumerated().map { index, sa in
            WatchMessage.change(seq: start.seq + UInt64(index) + 1, .securityAssociation(sa.watched))
        }
        #expect(queued + rest == expected)
    }

    @Test(
        "a controller observes and applies through an agent of wire version 1 as before, without positions, and its watch ends unsupported"
    )
    func olderAgentIsPolled() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), clock: SteppedClock(),
            protocolVersions: ["a": 1...1])
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        let batch = try await kernel.applyReportingPosition(
            [.addSA(try Self.association(0x1000))], deadline: .now + .seconds(20))
        #expect(batch.results.map(\.outcome) == [.applied])
        #expect(batch.position == nil)
        let observation = try await kernel.observe()
        #expect(observation.securityAssociations.count == 1)
        #expect(observation.watchPosition == nil)

        try await Self.expectUnsupported(kernel, node: "a", because: "version 1")
    }

    @Test("an agent whose kernel keeps no watch model answers a watch as unsupported, naming the node")
    func polledKernelIsUnsupported() async throws {
        let agents = try await InProcessAgents.start(nodes: ["a"], connector: HungConnector(), clock: SteppedClock())
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        try await Self.expectUnsupported(kernel, node: "a", because: "keeps no watch model")
    }

    @Test("the agent refuses a watch from a client whose certificate is a node's, not a controller's")
    func watchNeedsControllerIdentity() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), clock: SteppedClock())
        defer { Task { await agents.stop() } }
        _ = try await agents.kernel("a").apply([.addSA(try Self.association(0x1000))])
        let nodeCertificate = try AgentCredentials(
            ca: agents.ca,
            issued: agents.ca.issue(for: .node(cluster: "test", name: "b"), now: Date(), validity: .seconds(3600)))
        let kernel = try await agents.kernel("a", credentials: nodeCertificate)
        var messages = try #require(kernel.watch(from: nil)).makeAsyncIterator()
        let (read, error) = await Self.ending(of: &messages)
        #expect(read.isEmpty, "a client that is not a controller received \(read)")
        #expect(error != nil)
        #expect("\(String(describing: error))".contains("node a"), "\(String(describing: error))")
        let refusals = try #require(agents.servers["a"]).refusedClients.map(\.description)
        #expect(
            refusals.contains {
                $0.contains("expected spiffe://test/controller") && $0.contains("spiffe://test/node/b")
            },
            "\(refusals)")
    }
}

extension AgentWatchTests {
    /// The watch's reports of an agent, as its metrics receive them.
    final class WatchRecorder: AgentRecorder {
        struct Counts: Equatable {
            var starts: [WatchStart: Int] = [:]
            var events = 0
            var watchRequests = 0
        }

        let counts = Mutex(Counts())
        /// Every value of the open-streams gauge, in order.
        let open: AsyncStream<Int>
        private let openValues: AsyncStream<Int>.Continuation

        init() { (open, openValues) = AsyncStream.makeStream(of: Int.self) }

        func record(request: AgentRequestKind, result: AgentRequestResult) {
            if request == .watch && result == .ok { counts.withLock { $0.watchRequests += 1 } }
        }
        func record(highestEpoch: UInt64) {}
        func record(statistics: [String: UInt64]) {}
        func record(handshakeRefused reason: HandshakeRefusalReason) {}
        func recordAcceptedConnection() {}
        func record(watchStreamsOpen: Int) { openValues.yield(watchStreamsOpen) }
        func record(watchStart: WatchStart) { counts.withLock { $0.starts[watchStart, default: 0] += 1 } }
        func record(watchEventsSent: Int) { counts.withLock { $0.events += watchEventsSent } }
    }

    @Test(
        "the agent reports each watch stream open and closed, how it began (a snapshot, a resume from the ring), and every event it sent"
    )
    func watchIsCounted() async throws {
        let fleet = AgentFixtures.fleet()
        let recorder = WatchRecorder()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), recorders: ["a": recorder],
            clock: SteppedClock())
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        _ = try await kernel.apply([.addSA(try Self.association(0x1000)), .addPolicy(Self.outbound)])
        var open = recorder.open.makeAsyncIterator()

        var first: Messages? = try #require(kernel.watch(from: nil)).makeAsyncIterator()
        let (_, position, _) = try await Self.snapshot(of: &first!)
        #expect(await open.next() == 1)
        first = nil
        #expect(await open.next() == 0, "the stream its controller dropped is still counted open")

        _ = try await kernel.apply([.addSA(try Self.association(0x2000))])
        var resumed = try #require(kernel.watch(from: position)).makeAsyncIterator()
        _ = try await Self.next(1, of: &resumed)
        #expect(await open.next() == 1)
        #expect(
            recorder.counts.withLock { $0 }
                == WatchRecorder.Counts(starts: [.snapshot: 1, .resume: 1], events: 4, watchRequests: 2))
    }
}

extension AgentWatchTests {
    /// The next message, which must be a progress.
    static func progress(of messages: inout Messages) async throws -> WatchProgress? {
        let next = try await Self.next(1, of: &messages)
        guard case .progress(let progress) = next.first else {
            Issue.record("\(next) is not a progress")
            return nil
        }
        return progress
    }

    @Test(
        "a progress carries the XFRM statistics of the agent's last reading only when they changed since the stream last had them"
    )
    func progressCarriesChangedStatistics() async throws {
        let fleet = AgentFixtures.fleet()
        let clock = SteppedClock()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), clock: clock)
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        // An outbound policy without its SA: each packet from a to b is dropped (XfrmOutNoStates).
        _ = try await kernel.apply([.addPolicy(Self.outbound)])
        #expect(fleet.withState { $0.send(from: "a", toNode: "b") } == .dropped(.outNoStates))
        let first = try await kernel.observe().statistics
        #expect(first["XfrmOutNoStates"] == 1)
        var messages = try #require(kernel.watch(from: nil)).makeAsyncIterator()
        _ = try await Self.snapshot(of: &messages)

        await clock.waitForSleepers()
        clock.advance(by: .seconds(12))
        #expect(try await Self.progress(of: &messages)?.statistics == first)
        await clock.waitForSleepers()
        clock.advance(by: .seconds(12))
        #expect(try await Self.progress(of: &messages)?.statistics == nil, "unchanged statistics were sent again")

        #expect(fleet.withState { $0.send(from: "a", toNode: "b") } == .dropped(.outNoStates))
        let second = try await kernel.observe().statistics
        #expect(second["XfrmOutNoStates"] == 2)
        await clock.waitForSleepers()
        clock.advance(by: .seconds(12))
        #expect(try await Self.progress(of: &messages)?.statistics == second)
    }
}

extension AgentWatchTests {
    @Test(
        "an agent that stops ends its open watch streams instead of waiting for them, and each ends with an error naming the node"
    )
    func stoppingAgentEndsStreams() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), clock: SteppedClock())
        let kernel = try await agents.kernel("a")
        _ = try await kernel.apply([.addSA(try Self.association(0x1000))])
        var messages = try #require(kernel.watch(from: nil)).makeAsyncIterator()
        _ = try await Self.snapshot(of: &messages)

        await agents.stop()
        let (read, error) = await Self.ending(of: &messages)
        #expect(read.allSatisfy { if case .progress = $0 { true } else { false } }, "\(read)")
        guard case .stopped(let node, _) = error as? KernelWatchError else {
            Issue.record("the stream ended with \(String(describing: error)), not stopped")
            return
        }
        #expect(node == "a")
    }
}
