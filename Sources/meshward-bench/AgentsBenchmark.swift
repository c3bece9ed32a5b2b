import Agent
import AgentTestSupport
import ArgumentParser
import Controller
import DesiredState
import Foundation
import Identity
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Reconciler

/// `meshward-bench agents`: a fleet of in-process agents on loopback (real gRPC and mutual TLS,
/// simulated kernels behind them) against the same fleet reached in process with no transport.
///
/// The fleet is first converged in process. The agents then run in child processes of this
/// executable (`--serve-fleet`), each serving its share of the converged fleet (at most
/// `--agents-per-child` nodes: a process holds at most 20,000 open files, and each agent costs its
/// process a listener and the connection it accepts), so that this process is the controller
/// alone and its peak memory is the controller's. Each side has its own copy of
/// the Store's records and of the fleet; each figure is one steady pass (observe every node,
/// plan, nothing to send) and a full rekey (every channel rotated on request, the passes of one
/// `converge` and the drain), first through the agents, then in process.
struct AgentsBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agents",
        abstract: "Steady pass and full rekey of a fleet behind in-process agents vs in process.")

    /// The fleets the benchmark can put behind agents.
    enum Fleet: String, ExpressibleByArgument, CaseIterable {
        /// One three-tier service over every node: every web node talks to every app node, every
        /// app node to every db node (444,222 channels at 1,000 nodes).
        case threeTier = "three-tier"
        /// Cells of ten nodes, each a three-tier service of its own (about five channels a node).
        case cells
    }

    @Option(help: "Nodes of the fleet, each behind its own agent.")
    var nodes = 1000

    @Option(
        name: .customLong("fleet"),
        help: "The fleet: three-tier (one service over every node) or cells (services of ten nodes).")
    var shape: Fleet = .threeTier

    @Option(help: "Steady passes to time on each side (the median is reported).")
    var repeats = 5

    @Option(help: "Reconcile cycles to time each way, connections kept and made anew (the median is reported).")
    var cycles = 5

    @Option(help: "How many nodes a pass observes at once, on both sides.")
    var observeParallelism = FleetReconciler.observeParallelism

    @Option(help: "The most agents one child process runs; the nodes are spread over as many children as it takes.")
    var agentsPerChild = 2500

    @Option(help: "Seconds the controller rests, streams open, for its CPU at rest.")
    var watchRestSeconds = 20

    @Option(help: "Changes made through the agents for the event-to-cache latency.")
    var watchEvents = 2_000

    @Option(help: "The rate of those changes, per second.")
    var watchRate = 1_000

    @Option(
        help: ArgumentHelp(
            "Serve the saved fleet at this path with one agent per node (the child).", visibility: .private))
    var serveFleet: String?

    @Option(help: ArgumentHelp("Where the child writes the controller's credentials and ports.", visibility: .private))
    var serveDirectory: String?

    @Option(help: ArgumentHelp("The cluster the child's agents belong to.", visibility: .private))
    var clusterName = "bench"

    func run() async throws {
        let openFileLimit = try OpenFiles.raiseLimit()
        if let serveFleet, let serveDirectory {
            try await AgentsChild.serve(fleetFile: serveFleet, directory: serveDirectory, cluster: clusterName)
            return
        }
        let written = try FleetGenerator.write(
            shape == .cells ? FleetGenerator.cells(nodes: nodes) : FleetGenerator.threeTier(nodes: nodes))
        defer { try? FileManager.default.removeItem(at: written.directory) }
        let loaded = SpecLoader().load(paths: [written.file])
        guard let intent = loaded.intent else { throw BenchFailure("generated spec invalid") }
        let reqid = Reqid(intent.reqid)
        let logger = Logger(label: "meshward.bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let fleet = SimulatedFleet()
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
        let directStore = ScratchGenerationStore(channels: [:])
        let clock = ManualClock()
        let direct = FleetReconciler(
            store: directStore, kernels: SimulatedFleetKernels(fleet: fleet, reqid: reqid), reqid: reqid,
            clock: clock, logger: logger, observeParallelism: observeParallelism)
        let initial = try await direct.converge(intent: intent, waitForDrain: true)
        guard initial.outcome == .converged else { throw BenchFailure("the fleet ended \(initial.outcome)") }
        let beforeAgents = BenchmarkReport.peakResidentMiB()

        let children = try AgentsChildren.start(fleet: fleet, cluster: intent.cluster, agentsPerChild: agentsPerChild)
        defer { children.stop() }
        let agentStore = ScratchGenerationStore(channels: try directStore.loadChannels())
        let agentKernels = BenchAgentKernels(
            nodes: Set(intent.nodes.map(\.name)), children: children, reqid: reqid, logger: logger)
        let viaAgents = FleetReconciler(
            store: agentStore, kernels: agentKernels, reqid: reqid, clock: clock, logger: logger,
            observeParallelism: observeParallelism)

        func steady(
            _ reconciler: FleetReconciler, store: ScratchGenerationStore
        ) async throws -> (
            wall: Duration, cpu: Duration
        ) {
            var samples: [(Duration, Duration)] = []
            for number in 1...repeats {
                var records = try store.loadChannels()
                let measured = try await measureBoth {
                    try await reconciler.runPass(number: number, intent: intent, records: &records)
                }
                guard measured.result.results.isEmpty, measured.result.unreachable.isEmpty else {
                    throw BenchFailure(
                        "a steady pass sent \(measured.result.results.count) operations, "
                            + "\(measured.result.unreachable.count) nodes unreachable: "
                            + "\(measured.result.unreachable.first.map { "\($0.key): \($0.value)" } ?? "")")
                }
                samples.append((measured.wall, measured.cpu))
            }
            let sorted = samples.sorted { $0.0 < $1.0 }
            return sorted[sorted.count / 2]
        }

        /// The transport's own cost: one call to every agent that does the least an agent can do
        /// (a ready mark for a boot that is not the agent's, which it ignores), as many at once
        /// as a pass observes; the median of `repeats`.
        func callFloor(_ kernels: BenchAgentKernels) async throws -> (wall: Duration, cpu: Duration) {
            let nodes = kernels.knownNodes.sorted()
            var samples: [(Duration, Duration)] = []
            for _ in 1...repeats {
                let measured = try await measureBoth {
                    try await withThrowingTaskGroup(of: Bool.self) { group in
                        var waiting = nodes.makeIterator()
                        func start(_ node: String) {
                            group.addTask {
                                let kernel = try await kernels.kernel(for: node)
                                guard let agent = kernel as? AgentKernel else {
                                    throw BenchFailure("node \(node) is not behind an agent")
                                }
                                return try await agent.markReady(
                                    bootID: "not-a-boot", deadline: .now + FleetReconciler.kernelCallTimeout)
                            }
                        }
                        for _ in 0..<observeParallelism {
                            guard let node = waiting.next() else { break }
                            start(node)
                        }
                        var marked = 0
                        while let ready = try await group.next() {
                            if ready { marked += 1 }
                            if let next = waiting.next() { start(next) }
                        }
                        return marked
                    }
                }
                guard measured.result == 0 else { throw BenchFailure("\(measured.result) agents took a foreign mark") }
                samples.append((measured.wall, measured.cpu))
            }
            let sorted = samples.sorted { $0.0 < $1.0 }
            return sorted[sorted.count / 2]
        }

        func rekey(
            _ reconciler: FleetReconciler, _ side: String
        ) async throws -> (passes: Int, operations: Int, wall: Duration) {
            do {
                return try await rekeyEveryChannel(reconciler)
            } catch {
                throw BenchFailure("the full rekey \(side) failed: \(error)")
            }
        }

        func rekeyEveryChannel(
            _ reconciler: FleetReconciler
        ) async throws -> (passes: Int, operations: Int, wall: Duration) {
            clock.advance(by: 1)
            let requests = Dictionary(uniqueKeysWithValues: intent.channels.map { ($0.id, clock.now()) })
            let started = ContinuousClock.now
            let report = try await reconciler.converge(intent: intent, waitForDrain: false, rekeyRequests: requests)
            // Finish the drains on the manual clock so that the fleet ends converged.
            clock.advance(by: 60)
            let drained = try await reconciler.converge(intent: intent, waitForDrain: true)
            guard drained.outcome == .converged else { throw BenchFailure("the rekey ended \(drained.outcome)") }
            return (
                report.passes.count + drained.passes.count, report.operationCount + drained.operationCount,
                ContinuousClock.now - started
            )
        }

        // A failure here with a child dead is reported with the child's exit status and nodes.
        let (firstContact, overAgents, floor, watched, rekeyOverAgents, overPool, poolFloor, openFiles) =
            try await children.reportingDeaths {
                // The first pass through the agents also makes every TLS connection: timed on its own.
                var warmRecords = try agentStore.loadChannels()
                let firstContact = try await measureBoth {
                    try await viaAgents.runPass(number: 0, intent: intent, records: &warmRecords)
                }
                // Every agent connected: the controller's open files are at their most.
                let openFiles = OpenFiles.count()
                let overAgents = try await steady(viaAgents, store: agentStore)
                let floor = try await callFloor(agentKernels)
                let watched: WatchMeasurement.Figures
                do {
                    watched = try await WatchMeasurement(
                        intent: intent, kernels: agentKernels, store: agentStore, clock: clock, reqid: reqid,
                        logger: logger, observeParallelism: observeParallelism, repeats: repeats,
                        rest: .seconds(watchRestSeconds), eventsPerSecond: watchRate, events: watchEvents
                    ).run()
                } catch {
                    throw BenchFailure("the watch's figures failed: \(error)")
                }
                // Printed at once, so that a later phase that fails does not lose them.
                FileHandle.standardError.write(Data("watch figures: \(watched)\n".utf8))
                let rekeyOverAgents = try await rekey(viaAgents, "over agents")
                await agentKernels.close()

                // The same steady pass and smallest call with each call on the shared pool, hopping to
                // its connection's event loop and back (as every call did before the calls ran on the
                // event loop), over connections of their own.
                let poolKernels = BenchAgentKernels(
                    nodes: Set(intent.nodes.map(\.name)), children: children, reqid: reqid,
                    executor: globalConcurrentExecutor,
                    logger: logger)
                let viaPool = FleetReconciler(
                    store: agentStore, kernels: poolKernels, reqid: reqid, clock: clock, logger: logger,
                    observeParallelism: observeParallelism)
                var poolRecords = try agentStore.loadChannels()
                _ = try await viaPool.runPass(number: 0, intent: intent, records: &poolRecords)
                let overPool = try await steady(viaPool, store: agentStore)
                let poolFloor = try await callFloor(poolKernels)
                await poolKernels.close()
                return (firstContact, overAgents, floor, watched, rekeyOverAgents, overPool, poolFloor, openFiles)
            }
        let controllerPeak = BenchmarkReport.peakResidentMiB()
        let agentsPeaks = try children.finish()

        let inProcess = try await steady(direct, store: directStore)
        let rekeyInProcess = try await rekey(direct, "in process")
        let text = shape == .cells ? FleetGenerator.cells(nodes: nodes) : FleetGenerator.threeTier(nodes: nodes)
        let cycle = try await ReconcileCycleMeasurement(
            text: text, intent: intent, cycles: cycles, agentsPerChild: agentsPerChild
        ).run()

        var report = BenchmarkReport("agents \(shape.rawValue) \(nodes)")
        report.add("nodes (one agent each)", "\(nodes)", key: "nodes", value: nodes)
        report.add("channels", "\(intent.channels.count)", key: "channels", value: intent.channels.count)
        report.add(
            "observe parallelism", "\(observeParallelism)", key: "observe_parallelism", value: observeParallelism)
        report.add(
            "agents' child processes", "\(children.children.count) (at most \(agentsPerChild) agents each)",
            key: "agent_children", value: children.children.count)
        report.record("agents_per_child", agentsPerChild)
        report.seconds(
            "start every agent (slowest child's own start)", children.agentStarts.max() ?? .zero,
            key: "agents_start_seconds")
        report.seconds(
            "start every child, until the last one's agents listen (wall)", children.started,
            key: "children_start_seconds")
        report.seconds("first pass through agents (connects)", firstContact.wall, key: "first_contact_seconds")
        report.seconds("steady pass in process (wall)", inProcess.wall, key: "steady_in_process_seconds")
        report.seconds("steady pass over agents (wall)", overAgents.wall, key: "steady_agents_seconds")
        report.seconds("steady pass over agents (controller CPU)", overAgents.cpu, key: "steady_agents_cpu_seconds")
        let ratio = overAgents.wall.seconds / max(inProcess.wall.seconds, 1e-9)
        report.add("transport overhead (wall ratio)", String(format: "%.2fx", ratio), key: "steady_ratio", value: ratio)
        report.seconds(
            "steady pass over agents, calls on the shared pool (wall)", overPool.wall, key: "steady_pool_seconds")
        report.seconds(
            "steady pass over agents, calls on the shared pool (controller CPU)", overPool.cpu,
            key: "steady_pool_cpu_seconds")
        report.seconds(
            "watch: every stream live, every copy current, from none (wall)", watched.start.wall,
            key: "watch_start_seconds")
        report.seconds(
            "watch: every stream live, every copy current, from none (controller CPU)", watched.start.cpu,
            key: "watch_start_cpu_seconds")
        let perAgentKiB = watched.residentMiBAdded * 1024 / Double(nodes)
        report.add(
            "watch: controller memory added by the streams and copies, per agent",
            String(format: "%.1f KiB (%.1f MiB in all)", perAgentKiB, watched.residentMiBAdded),
            key: "watch_memory_kib_per_agent", value: perAgentKiB)
        report.seconds("steady pass on the watch's cache (wall)", watched.steady.wall, key: "steady_watch_seconds")
        report.seconds(
            "steady pass on the watch's cache (controller CPU)", watched.steady.cpu, key: "steady_watch_cpu_seconds")
        let watchRatio = watched.steady.wall.seconds / max(inProcess.wall.seconds, 1e-9)
        report.add(
            "steady pass on the watch's cache / in process (wall)", String(format: "%.2fx", watchRatio),
            key: "steady_watch_ratio", value: watchRatio)
        report.seconds(
            "controller CPU at rest, streams open, per minute", watched.restCPUPerMinute,
            key: "watch_rest_cpu_seconds_per_minute")
        var changedTable = TextTable(["nodes changed", "pass (wall)", "pass (CPU)", "read afresh", "operations"])
        for row in watched.changed {
            changedTable.add([
                "\(row.nodes)", String(format: "%.3f s", row.wall.seconds), String(format: "%.3f s", row.cpu.seconds),
                "\(row.readAfresh)", "\(row.operations)",
            ])
            report.record("watch_changed_\(row.nodes)_seconds", row.wall.seconds)
            report.record("watch_changed_\(row.nodes)_cpu_seconds", row.cpu.seconds)
            report.record("watch_changed_\(row.nodes)_read", row.readAfresh)
        }
        report.add(changedTable)
        report.add(
            "event-to-cache latency at \(watchRate) changes/s (p50, p99; \(watched.latencyCount) changes)",
            String(format: "%.1f ms, %.1f ms", watched.latencyP50.seconds * 1000, watched.latencyP99.seconds * 1000),
            key: "watch_latency_p50_ms", value: watched.latencyP50.seconds * 1000)
        report.record("watch_latency_p99_ms", watched.latencyP99.seconds * 1000)
        report.seconds("smallest call to every agent (wall)", floor.wall, key: "call_floor_seconds")
        report.seconds("smallest call to every agent (controller CPU)", floor.cpu, key: "call_floor_cpu_seconds")
        let floorShare = floor.wall.seconds / max(inProcess.wall.seconds, 1e-9)
        report.add(
            "smallest call to every agent / steady pass in process", String(format: "%.2fx", floorShare),
            key: "call_floor_ratio", value: floorShare)
        report.seconds(
            "smallest call to every agent, on the shared pool (controller CPU)", poolFloor.cpu,
            key: "call_floor_pool_cpu_seconds")
        report.add(
            "full rekey in process", "\(rekeyInProcess.passes) passes, \(rekeyInProcess.operations) operations",
            key: "rekey_in_process_passes", value: rekeyInProcess.passes)
        report.seconds("full rekey in process (wall)", rekeyInProcess.wall, key: "rekey_in_process_seconds")
        report.add(
            "full rekey over agents", "\(rekeyOverAgents.passes) passes, \(rekeyOverAgents.operations) operations",
            key: "rekey_agents_passes", value: rekeyOverAgents.passes)
        report.seconds("full rekey over agents (wall)", rekeyOverAgents.wall, key: "rekey_agents_seconds")
        report.seconds(
            "controller: install over agents (apply to an empty fleet)", cycle.install, key: "install_seconds")
        report.seconds(
            "reconcile cycle, connections kept (wall)", cycle.kept.wall, key: "cycle_kept_seconds")
        report.seconds(
            "reconcile cycle, connections kept (controller CPU)", cycle.kept.cpu, key: "cycle_kept_cpu_seconds")
        report.add(
            "connections opened over \(cycles) cycles, kept", "\(cycle.keptConnections)",
            key: "cycle_kept_connections", value: cycle.keptConnections)
        report.seconds(
            "reconcile cycle, every agent dialled anew (wall)", cycle.anew.wall, key: "cycle_anew_seconds")
        report.seconds(
            "reconcile cycle, every agent dialled anew (controller CPU)", cycle.anew.cpu,
            key: "cycle_anew_cpu_seconds")
        report.add(
            "connections opened over \(cycles) cycles, anew", "\(cycle.anewConnections)",
            key: "cycle_anew_connections", value: cycle.anewConnections)
        let cycleRatio = cycle.anew.cpu.seconds / max(cycle.kept.cpu.seconds, 1e-9)
        report.add(
            "cycle CPU, dialled anew / kept", String(format: "%.2fx", cycleRatio), key: "cycle_cpu_ratio",
            value: cycleRatio)
        report.add(
            "controller peak memory before the agents", String(format: "%.1f MiB", beforeAgents),
            key: "controller_before_agents_peak_rss_mib", value: beforeAgents)
        report.add(
            "controller peak memory after the agent passes", String(format: "%.1f MiB", controllerPeak),
            key: "controller_peak_rss_mib", value: controllerPeak)
        let agentsPeak = agentsPeaks.reduce(0, +)
        report.add(
            "agents' processes peak memory (all agents, sum over children)", String(format: "%.1f MiB", agentsPeak),
            key: "agents_peak_rss_mib", value: agentsPeak)
        let largestChild = agentsPeaks.max() ?? 0
        report.add(
            "agents' peak memory, largest child", String(format: "%.1f MiB", largestChild),
            key: "agents_child_peak_rss_mib_max", value: largestChild)
        let limit =
            "soft \(openFileLimit.soft), hard \(openFileLimit.hard)"
            + (openFileLimit.raisedFrom.map { " (soft raised from \($0) at startup)" } ?? " (soft already at hard)")
        report.add(
            "open-file limit (controller and children)", limit, key: "open_file_limit", value: openFileLimit.soft)
        if let openFiles {
            report.add(
                "controller open files, every agent connected", "\(openFiles)", key: "controller_open_files",
                value: openFiles)
        }
        if let cycleOpenFiles = cycle.openFiles {
            report.add(
                "controller open files, reconcile cycles with connections kept", "\(cycleOpenFiles)",
                key: "cycle_controller_open_files", value: cycleOpenFiles)
        }
        var perChild = TextTable(["agents' child", "nodes", "agents start", "peak memory"])
        for (index, child) in children.children.enumerated() {
            perChild.add([
                "\(child.number)", "\(child.nodes.count)",
                String(format: "%.3f s", children.agentStarts[index].seconds),
                String(format: "%.1f MiB", agentsPeaks[index]),
            ])
        }
        report.add(perChild)
        report.record("agents_child_peak_rss_mib", agentsPeaks)
        report.peakMemory()
        try report.print()
    }
}
