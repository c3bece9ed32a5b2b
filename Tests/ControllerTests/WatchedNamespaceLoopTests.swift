import Foundation
import Kernel
import Logging
import MeshwardCommands
import MeshwardCore
import MeshwardTestKit
import MeshwardTestSupport
import Synchronization
import Testing

@testable import Controller
@testable import ReconcilerTestSupport

/// A reconcile loop over `netns:` nodes, whose netlink kernels the session keeps and watches as it
/// watches agents (design.md §12): drift seen on a node's kernel wakes the loop whatever its
/// interval, and status shows each node's watch. Each test makes and deletes its own network
/// namespaces (`mwtest-*`). This machine's kernel has XFRM but no ESP, so no channel can end on a
/// `netns:` node here (a channel needs SAs): the fleet's one flow joins two `sim` nodes (a Store
/// with no channel would take any object of Meshward's for a lost Store), and the drift is a
/// policy with Meshward's reqid that no channel claims, added by hand to a `netns:` node, which
/// the loop deletes.
@Suite(
    "A loop over watched netns nodes", .serialized,
    .enabled("needs root and `ip netns add`") { await TestNamespace.isPermitted() })
struct WatchedNamespaceLoopTests {
    /// Two `netns:` nodes, `a` and `b`, each in a namespace of its own, and two `sim` nodes with a
    /// flow between them, in a spec and a state directory; a loop of 10-minute interval on a clock
    /// that moves only when told.
    final class Lab: Sendable {
        let namespaces: [String: TestNamespace]
        let directory: URL
        let spec: URL
        let events = LoopEvents()
        let clock: ManualClock
        let lines: CollectingLogHandler.Lines
        let logger: Logger
        let controller: MeshwardController
        let reload = ReloadTrigger()
        private let cycles = Mutex<[ApplyDocument]>([])
        private let running = Mutex<Task<Void, any Error>?>(nil)

        static let addresses = ["a": "198.18.7.1", "b": "198.18.7.2"]

        init() async throws {
            var namespaces: [String: TestNamespace] = [:]
            for node in Self.addresses.keys.sorted() { namespaces[node] = try await TestNamespace.create() }
            self.namespaces = namespaces
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-netns-\(UUID())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            spec = directory.appendingPathComponent("fleet.yaml")
            var yaml = ["version: 1", "cluster: netns-watch", "nodes:"]
            for (node, address) in Self.addresses.sorted(by: { $0.key < $1.key }) {
                let namespace = try #require(namespaces[node]).name
                yaml.append("  - { name: \(node), addresses: [\(address)], endpoint: \"netns:\(namespace)\" }")
            }
            yaml.append("  - { name: s1, addresses: [198.18.7.11] }")
            yaml.append("  - { name: s2, addresses: [198.18.7.12] }")
            yaml.append("flows:")
            yaml.append("  - { name: sim-pair, from: { name: s1 }, to: { name: s2 } }")
            try (yaml.joined(separator: "\n") + "\n").write(to: spec, atomically: true, encoding: .utf8)
            let events = self.events
            clock = ManualClock(Date(), sleeps: .wait, onChange: { events.changed() })
            let lines = CollectingLogHandler.Lines(events: events)
            self.lines = lines
            logger = Logger(label: "test", factory: { _ in CollectingLogHandler(lines: lines) })
            controller = MeshwardController(
                stateDirectory: directory.appendingPathComponent("state").path, logger: logger, clock: clock)
        }

        var documents: [ApplyDocument] { cycles.withLock { $0 } }
        var watch: FleetWatch { controller.context.session.watch }

        /// Starts the loop and waits until its first cycle converged and the watch's copy of every
        /// node stands for it.
        func start() async {
            let service = ReconcileService(
                controller: controller, specPaths: [spec.path], interval: .seconds(600), once: false, reload: reload,
                clock: clock, logger: logger,
                onCycle: { [self] result in
                    if case .success(let document) = result { cycles.withLock { $0.append(document) } }
                    events.changed()
                })
            running.withLock { $0 = Task { try await service.run() } }
            let watch = self.watch
            await events.wait {
                self.documents.first?.outcome == .converged && watch.summary.live == 2
                    && Self.addresses.keys.allSatisfy { watch.cachedObservation(of: $0) != nil }
            }
        }

        /// How many times the kept kernel of `node` was dumped into its watch model (every fresh
        /// read of a watched netlink kernel, and the dump after each batch).
        func dumps(of node: String) async throws -> Int {
            let kernel = try #require(try await controller.context.session.localKernels.watchedKernel(for: node))
            let watched = try #require(kernel as? NetlinkKernel)
            return try await watched.startWatching().resynchronizations.all
        }

        /// Stops the loop, closes the controller and deletes the namespaces and files.
        func stop() async {
            let task = running.withLock { $0 }
            task?.cancel()
            _ = await task?.result
            await controller.close()
            for namespace in namespaces.values { await namespace.delete() }
            try? FileManager.default.removeItem(at: directory)
        }
    }

    @Test(
        "a policy with Meshward's reqid added by hand on a netns node wakes a loop of 10-minute interval without the clock moving, and its cycle deletes it having read that node afresh and not the untouched netns node",
        .timeLimit(.minutes(3)))
    func driftOnANamespaceNodeWakesTheLoop() async throws {
        let lab = try await Lab()
        await lab.start()
        let start = lab.clock.now()
        let cyclesBefore = lab.documents.count
        let dumpsBefore = (a: try await lab.dumps(of: "a"), b: try await lab.dumps(of: "b"))
        let namespace = try #require(lab.namespaces["a"])

        // Owned (Meshward's reqid, an ESP transport template) but claimed by no channel.
        let stray = ["src", "198.18.7.1/32", "dst", "198.18.99.9/32", "dir", "out"]
        try await namespace.ip(
            ["xfrm", "policy", "add"] + stray + [
                "tmpl", "src", "198.18.7.1", "dst", "198.18.99.9", "proto", "esp", "reqid",
                "\(Reqid.meshwardDefault.rawValue)", "mode", "transport",
            ])
        await lab.events.wait { lab.documents.dropFirst(cyclesBefore).contains { $0.operations > 0 } }

        #expect(lab.clock.now() == start, "the clock moved: the interval, not the drift, started the cycle")
        #expect(lab.lines.contains("drift seen by the watch on node a; reloading"), "\(lab.lines.all)")
        let left = try await namespace.ip("xfrm", "policy", "list", "dir", "out")
        #expect(!left.contains("198.18.99.9"), "the stray policy is still there: \(left)")
        let dumpsAfter = (a: try await lab.dumps(of: "a"), b: try await lab.dumps(of: "b"))
        #expect(dumpsAfter.a > dumpsBefore.a, "a was not read afresh before its policy was deleted")
        #expect(dumpsAfter.b == dumpsBefore.b, "b was read although the cache stood for it and nothing touched it")
        await lab.stop()
    }

    @Test(
        "across cycles the session keeps one netlink kernel per netns node, which every pass reads through, and one watch stream per node; status shows each node's watch as the loop recorded it",
        .timeLimit(.minutes(3)))
    func keptKernelsAndWatchInStatus() async throws {
        let lab = try await Lab()
        await lab.start()
        let dumpsBefore = (a: try await lab.dumps(of: "a"), b: try await lab.dumps(of: "b"))
        // Two more cycles, each started by the trigger (as a SIGHUP would, so each reads every
        // node afresh), the clock still.
        for cycle in 2...3 {
            lab.reload.fire("test cycle \(cycle)")
            await lab.events.wait { lab.documents.count >= cycle }
        }
        let session = lab.controller.context.session
        #expect(session.localKernels.kernelsOpened == 2)
        // One pass a cycle, each reading every node through its kept (watched) kernel.
        #expect(lab.documents.dropFirst().map(\.passes) == [1, 1])
        #expect(try await lab.dumps(of: "a") == dumpsBefore.a + 2)
        #expect(try await lab.dumps(of: "b") == dumpsBefore.b + 2)
        let watched = lab.watch.nodes
        #expect(watched.map(\.node) == ["a", "b"])
        #expect(watched.allSatisfy { $0.resumes == 0 && $0.snapshots == 1 && $0.live }, "\(watched)")

        let status = try await lab.controller.status()
        #expect(status.nodes.map(\.name) == ["a", "b", "s1", "s2"])
        for node in status.nodes where Lab.addresses[node.name] != nil {
            #expect(node.watch?.state == "live", "\(node.name): \(String(describing: node.watch))")
            #expect(node.watch?.snapshots == 1)
            #expect(node.agent == nil)
        }
        for node in status.nodes where Lab.addresses[node.name] == nil {
            #expect(node.watch == nil, "\(node.name) is a sim node, polled, never watched")
        }
        // What a pipeline reads: `nodes[].watch` of the netns nodes, absent for the sim nodes.
        let json = try DocumentEncoding.json(status)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let nodes = try #require(object["nodes"] as? [[String: Any]])
        #expect(nodes.map { ($0["watch"] as? [String: Any])?["state"] as? String } == ["live", "live", nil, nil])
        #expect(nodes.allSatisfy { $0["agent"] == nil })
        let text = StatusText(status).text
        #expect(text.contains("\n    watch live, 1 snapshot, 0 resumes (recorded "), "\(text)")
        await lab.stop()
    }
}
