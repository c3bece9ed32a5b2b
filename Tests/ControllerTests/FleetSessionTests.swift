import Agent
import AgentTestSupport
import DesiredState
import Foundation
import Identity
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

/// One session per controller process: the reconcile loop keeps one connection per agent across
/// its cycles, and the lost-Store guard reaches the agents through it.
@Suite("Fleet session", .serialized)
struct FleetSessionTests {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Counts the control connections an agent accepted.
    final class ConnectionCounter: AgentRecorder {
        private let count = Mutex(0)
        private let served = Mutex<[AgentRequestKind]>([])
        var accepted: Int { count.withLock { $0 } }
        /// The requests the agent answered, in order.
        var requests: [AgentRequestKind] { served.withLock { $0 } }
        func record(request: AgentRequestKind, result: AgentRequestResult) { served.withLock { $0.append(request) } }
        func record(highestEpoch: UInt64) {}
        func record(statistics: [String: UInt64]) {}
        func record(handshakeRefused reason: HandshakeRefusalReason) {}
        func recordAcceptedConnection() { count.withLock { $0 += 1 } }
    }

    /// A fleet of `count` nodes, each behind its own in-process agent with certificates of the
    /// cluster CA of the Store in `state` (made there first), backed by one simulated fleet; a
    /// chain of flows n0 -> n1 -> ... .
    final class AgentFleet: Sendable {
        let directory: URL
        let state: String
        let spec: URL
        let ca: ClusterCA
        let fleet: SimulatedFleet
        let nodes: [String]
        let ports: [String: Int]
        let counters: Mutex<[String: [ConnectionCounter]]>
        let agents: Mutex<[String: InProcessAgents]>
        /// The spec written to `spec`.
        let fleetSpec: FleetSpec

        init(count: Int) async throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-session-\(UUID())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            state = directory.appendingPathComponent("state").path
            let store = try await StoreLocation.stateDirectory.open(
                stateDirectory: state, masterKeyPath: nil, logger: FleetSessionTests.quiet)
            ca = try await ClusterCredentials(store: store, cluster: "test").certificateAuthority(now: Date())
            let specNodes = (0..<count).map { FleetSpec.node($0, ipv6: false) }
            nodes = specNodes.map(\.name)
            var simulated = SimulatedFleetState()
            for node in specNodes { simulated.addNode(node.name, addresses: [try #require(IPAddress(node.ipv4!))]) }
            fleet = SimulatedFleet(state: simulated)
            var agents: [String: InProcessAgents] = [:]
            var counters: [String: [ConnectionCounter]] = [:]
            var ports: [String: Int] = [:]
            for node in nodes {
                let counter = ConnectionCounter()
                let agent = try await InProcessAgents.start(
                    nodes: [node], connector: SimulatedConnector(fleet: fleet), ca: ca, recorders: [node: counter])
                agents[node] = agent
                counters[node] = [counter]
                let port: Int = try #require(agent.ports[node])
                ports[node] = port
            }
            self.agents = Mutex(agents)
            self.counters = Mutex(counters)
            self.ports = ports
            var fleetSpec = FleetSpec(
                nodes: specNodes,
                flows: (1..<count).map {
                    .init(name: "f\($0)", from: "n\($0 - 1)", to: "n\($0)", ports: [], cipher: nil)
                },
                drain: "1s")
            fleetSpec.endpoints = ports.mapValues { "agent:127.0.0.1:\($0)" }
            spec = directory.appendingPathComponent("fleet.yaml")
            try fleetSpec.yaml.write(to: spec, atomically: true, encoding: .utf8)
            self.fleetSpec = fleetSpec
        }

        /// The requests each node's agent answered since it last started.
        var requests: [String: [AgentRequestKind]] {
            counters.withLock { $0.compactMapValues { $0.last?.requests } }
        }

        /// Connections each node's agent accepted, over every start of it.
        var accepted: [String: [Int]] { counters.withLock { $0.mapValues { $0.map(\.accepted) } } }

        /// Stops `node`'s agent (waiting until it returned) and starts it again on the same port.
        func restart(_ node: String) async throws {
            let old = agents.withLock { $0[node] }
            await old?.stop()
            let counter = ConnectionCounter()
            let again = try await InProcessAgents.start(
                nodes: [node], connector: SimulatedConnector(fleet: fleet), ca: ca, recorders: [node: counter],
                ports: [node: try #require(ports[node])])
            agents.withLock { $0[node] = again }
            counters.withLock { $0[node, default: []].append(counter) }
        }

        func stop() async {
            for agent in agents.withLock({ Array($0.values) }) { await agent.stop() }
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// Runs a reconcile loop on `fleet` whose clock jumps over every wait, until `until` says
    /// stop after a cycle (given every cycle's document so far), and returns those documents.
    static func loop(
        _ fleet: AgentFleet, controller: MeshwardController,
        until: ([ApplyDocument]) async throws -> Bool
    ) async throws -> [ApplyDocument] {
        let (cycles, continuation) = AsyncStream.makeStream(of: Result<ApplyDocument, any Error>.self)
        let service = ReconcileService(
            controller: controller, specPaths: [fleet.spec.path], interval: .seconds(10), once: false,
            reload: ReloadTrigger(), clock: controller.clock, logger: quiet,
            onCycle: { result in continuation.yield(result) })
        let running = Task { try await service.run() }
        defer { running.cancel() }
        var documents: [ApplyDocument] = []
        for await result in cycles {
            documents.append(try result.get())
            if try await until(documents) { break }
        }
        running.cancel()
        _ = await running.result
        return documents
    }

    @Test(
        "a reconcile loop over 20 agents running 30 cycles opens exactly 20 connections, one accepted by each agent",
        .timeLimit(.minutes(5)))
    func loopKeepsOneConnectionPerAgent() async throws {
        let fleet = try await AgentFleet(count: 20)
        let controller = MeshwardController(stateDirectory: fleet.state, logger: Self.quiet, clock: ManualClock(Date()))
        let documents = try await Self.loop(fleet, controller: controller) { $0.count == 30 }
        #expect(documents.count == 30)
        #expect(documents.last?.outcome == .converged, "\(String(describing: documents.last))")
        #expect(documents.allSatisfy { $0.unreachable.isEmpty }, "\(documents.flatMap(\.unreachable))")
        let accepted = fleet.accepted
        #expect(accepted.values.allSatisfy { $0 == [1] }, "connections accepted per agent: \(accepted)")
        #expect(accepted.values.map { $0.reduce(0, +) }.reduce(0, +) == 20)
        #expect(controller.agentConnectionsOpened == 20)
        print("30 cycles over 20 agents: \(controller.agentConnectionsOpened) connections opened")
        await controller.close()
        await fleet.stop()
    }

    @Test(
        "a loop whose agent restarts reconnects to that agent alone (one or two connections, gRPC's pick-first), over the connection it kept, for ten cycles after",
        .timeLimit(.minutes(5)))
    func restartedAgentIsReconnectedAlone() async throws {
        let fleet = try await AgentFleet(count: 5)
        let controller = MeshwardController(stateDirectory: fleet.state, logger: Self.quiet, clock: ManualClock(Date()))
        // Converge, restart n2's agent, run until a cycle reaches every node again, then ten more.
        var restartedAt: Int?
        var reachedAgainAt: Int?
        var acceptedWhenReached: [String: [Int]] = [:]
        let documents = try await Self.loop(fleet, controller: controller) { documents in
            guard let last = documents.last, last.outcome == .converged, last.unreachable.isEmpty else { return false }
            guard restartedAt != nil else {
                restartedAt = documents.count
                try await fleet.restart("n2")
                return false
            }
            if reachedAgainAt == nil {
                reachedAgainAt = documents.count
                acceptedWhenReached = fleet.accepted
            }
            return documents.count >= (reachedAgainAt ?? 0) + 10
        }
        let accepted = fleet.accepted
        // The agent's GOAWAY makes gRPC's pick-first balancer re-resolve the address and, when
        // the resolution comes back before the old subchannel reconnected, replace it with a new
        // one: one or two connections to the restarted agent, and to it alone.
        let reconnections = accepted["n2"]?.last ?? 0
        #expect(accepted["n2"]?.first == 1 && (accepted["n2"]?.count ?? 0) == 2, "\(accepted)")
        #expect((1...2).contains(reconnections), "n2's restarted agent accepted \(reconnections): \(accepted)")
        #expect(
            (acceptedWhenReached["n2"]?.last ?? 0) >= 1,
            "n2 was reached again without a connection: \(acceptedWhenReached)")
        for node in fleet.nodes where node != "n2" {
            #expect(accepted[node] == [1], "\(node): \(accepted)")
        }
        #expect(controller.agentConnectionsOpened == 5, "the kept connections reconnect; none is made anew")
        print(
            "restart of one agent of 5: restarted after cycle \(restartedAt ?? 0), reached again in cycle "
                + "\(reachedAgainAt ?? 0), \(documents.count) cycles; connections accepted \(accepted)")
        await controller.close()
        await fleet.stop()
    }

    @Test(
        "an apply that compares the plan shown reads each agent twice before changing it: for the plan shown, and once under the lease, which the first pass reuses",
        .timeLimit(.minutes(5)))
    func interactiveApplyReadsEachAgentTwice() async throws {
        let fleet = try await AgentFleet(count: 3)
        let controller = MeshwardController(stateDirectory: fleet.state, logger: Self.quiet, clock: ManualClock(Date()))
        let first = try await controller.apply(
            try MeshwardController.loadSpec([fleet.spec.path]).intent, source: "test", waitForDrain: true)
        #expect(first.outcome == .converged)
        var changed = fleet.fleetSpec
        changed.cipher = "chacha20-poly1305"
        let intent = try MeshwardController.loadSpec([try Self.write(changed, in: fleet)]).intent
        let before = fleet.requests.mapValues(\.count)
        let shown = try await controller.plan(intent)
        #expect(shown.changes)
        let applied = try await controller.apply(intent, source: "test", waitForDrain: true, expected: shown)
        #expect(applied.outcome == .converged)
        for (node, requests) in fleet.requests {
            let since = requests.dropFirst(before[node] ?? 0)
            let untilFirstApply = since.prefix { $0 != .apply }
            #expect(since.contains(.apply), "\(node) was not changed: \(Array(since))")
            #expect(
                untilFirstApply.filter { $0 == .observe }.count == 2,
                "\(node)'s requests before its first apply: \(Array(untilFirstApply))")
        }
        await controller.close()
        await fleet.stop()
    }

    @Test(
        "the session opens its Store once for all its uses, twenty concurrent first uses included, and again after an open that failed"
    )
    func storeIsOpenedOnce() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-session-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        struct OpenFailed: Error {}
        let session = FleetSession(clock: ManualClock(Date()), logger: Self.quiet)
        let opens = Mutex(0)
        let failing = Mutex(true)
        let open: @Sendable () async throws -> any ControllerStore = {
            opens.withLock { $0 += 1 }
            if failing.withLock({ $0 }) { throw OpenFailed() }
            return try StateStore.open(directory: directory.path, logger: Self.quiet)
        }
        await #expect(throws: OpenFailed.self) { try await session.store(open: open) }
        failing.withLock { $0 = false }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 { group.addTask { _ = try await session.store(open: open) } }
            try await group.waitForAll()
        }
        _ = try await session.store(open: open)
        #expect(opens.withLock { $0 } == 2, "one failed open, then one open for 21 uses")
    }

    /// Metadata in memory that counts its reads and writes.
    final class CountingMetadata: MetadataStore {
        private let values = Mutex<[String: String]>([:])
        let reads = Mutex(0)
        let writes = Mutex(0)
        func metadata(_ key: String) async throws -> String? {
            reads.withLock { $0 += 1 }
            return values.withLock { $0[key] }
        }
        func setMetadata(_ key: String, _ value: String?) async throws {
            writes.withLock { $0 += 1 }
            values.withLock { $0[key] = value }
        }
    }

    @Test(
        "the session reads the settings once per tenure of the lease and writes them only when they changed; a new epoch, a lease taken anew under the same epoch (a Store made anew) and no lease read them again"
    )
    func settingsAreKeptPerTenure() async throws {
        let session = FleetSession(clock: ManualClock(Date()), logger: Self.quiet)
        let store = CountingMetadata()
        let first = ControllerSettings(
            cluster: "test", reqid: 7, revision: "r1", rekeyEvery: .seconds(3600), rekeyPackets: nil,
            drain: .seconds(5), endpoints: ["n0": .sim], rekeyRequests: [:])
        try await first.save(to: store)
        let taken = Date(timeIntervalSince1970: 1_800_000_000)
        let held = Lease(holder: "a", acquiredAt: taken, expiresAt: taken.addingTimeInterval(15), epoch: 3)
        var renewed = held
        renewed.expiresAt = taken.addingTimeInterval(30)
        let (reads, writes) = (store.reads.withLock { $0 }, store.writes.withLock { $0 })
        for lease in [held, renewed, held, renewed, held] {
            #expect(try await session.settings(under: lease, in: store) == first)
            try await session.save(first, under: lease, to: store)
        }
        #expect(store.reads.withLock { $0 } == reads + 1, "one read for five uses under one tenure, renewals included")
        #expect(store.writes.withLock { $0 } == writes, "unchanged settings are not written")
        var second = first
        second.revision = "r2"
        try await session.save(second, under: held, to: store)
        #expect(store.writes.withLock { $0 } == writes + 1)
        #expect(try await session.settings(under: held, in: store) == second)
        #expect(store.reads.withLock { $0 } == reads + 1)
        var next = held
        next.epoch = 4
        #expect(try await session.settings(under: next, in: store) == second)
        #expect(store.reads.withLock { $0 } == reads + 2, "a new epoch reads again")
        var anew = next
        anew.acquiredAt = taken.addingTimeInterval(600)
        _ = try await session.settings(under: anew, in: store)
        #expect(store.reads.withLock { $0 } == reads + 3, "the same epoch taken at another time reads again")
        _ = try await session.settings(under: nil, in: store)
        _ = try await session.settings(under: nil, in: store)
        #expect(store.reads.withLock { $0 } == reads + 5, "without a lease every use reads")
    }

    /// Writes `spec` next to the fleet's own and returns its path.
    static func write(_ spec: FleetSpec, in fleet: AgentFleet) throws -> String {
        let file = fleet.directory.appendingPathComponent("changed-\(UUID()).yaml")
        try spec.yaml.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    @Test(
        "an agent fleet whose Store was lost makes apply refuse without --force, naming the agents of another CA, and creates no CA",
        .timeLimit(.minutes(5)))
    func lostStoreOfAnAgentFleetIsRefused() async throws {
        let fleet = try await AgentFleet(count: 3)
        let intent = try MeshwardController.loadSpec([fleet.spec.path]).intent
        let first = MeshwardController(stateDirectory: fleet.state, logger: Self.quiet)
        let applied = try await first.apply(intent, source: "test", waitForDrain: false)
        #expect(applied.unreachable.isEmpty && applied.outcome != .blocked, "\(applied)")
        await first.close()

        // The Store is lost: a new state directory, with no channel and no CA.
        let lost = fleet.directory.appendingPathComponent("lost").path
        let second = MeshwardController(stateDirectory: lost, logger: Self.quiet)
        await #expect {
            _ = try await second.apply(intent, source: "test", waitForDrain: false)
        } throws: { error in
            guard case ControllerError.lostStore(_, let owned, let foreign) = error else { return false }
            return owned.isEmpty && foreign == ["n0", "n1", "n2"]
                && "\(error)".contains(
                    "the agents of 3 nodes serve certificates of a cluster CA this Store does not hold")
        }
        await second.close()
        let store = try await StoreLocation.stateDirectory.open(
            stateDirectory: lost, masterKeyPath: nil, logger: Self.quiet)
        #expect(try await ClusterCredentials(store: store, cluster: "test").storedAuthority() == nil)
        #expect(try await store.loadChannels().isEmpty)
        // The agents' kernels kept what the first Store installed.
        for node in fleet.nodes {
            let kept = try fleet.fleet.withState { try $0.observe(node: node, reqid: Reqid(intent.reqid)) }
            #expect(!kept.securityAssociations.isEmpty, "\(node)")
        }
        await fleet.stop()
    }
}
