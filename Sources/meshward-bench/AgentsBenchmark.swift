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
/// The fleet is first converged in process. The agents then run in a child process of this
/// executable (`--serve-fleet`), serving a copy of the converged fleet, so that this process is
/// the controller alone and its peak memory is the controller's. Each side has its own copy of
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

    @Option(
        help: ArgumentHelp(
            "Serve the saved fleet at this path with one agent per node (the child).", visibility: .private))
    var serveFleet: String?

    @Option(help: ArgumentHelp("Where the child writes the controller's credentials and ports.", visibility: .private))
    var serveDirectory: String?

    @Option(help: ArgumentHelp("The cluster the child's agents belong to.", visibility: .private))
    var clusterName = "bench"

    func run() async throws {
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

        let child = try AgentsChild.start(fleet: fleet, cluster: intent.cluster)
        defer { child.stop() }
        let agentStore = ScratchGenerationStore(channels: try directStore.loadChannels())
        let agentKernels = BenchAgentKernels(
            nodes: Set(intent.nodes.map(\.name)), child: child, reqid: reqid, logger: logger)
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

        func rekey(_ reconciler: FleetReconciler) async throws -> (passes: Int, operations: Int, wall: Duration) {
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

        // The first pass through the agents also makes every TLS connection: timed on its own.
        var warmRecords = try agentStore.loadChannels()
        let firstContact = try await measureBoth {
            try await viaAgents.runPass(number: 0, intent: intent, records: &warmRecords)
        }
        let overAgents = try await steady(viaAgents, store: agentStore)
        let floor = try await callFloor(agentKernels)
        let rekeyOverAgents = try await rekey(viaAgents)
        await agentKernels.close()

        // The same steady pass and smallest call with each call on the shared pool, hopping to
        // its connection's event loop and back (as every call did before the calls ran on the
        // event loop), over connections of their own.
        let poolKernels = BenchAgentKernels(
            nodes: Set(intent.nodes.map(\.name)), child: child, reqid: reqid, executor: globalConcurrentExecutor,
            logger: logger)
        let viaPool = FleetReconciler(
            store: agentStore, kernels: poolKernels, reqid: reqid, clock: clock, logger: logger,
            observeParallelism: observeParallelism)
        var poolRecords = try agentStore.loadChannels()
        _ = try await viaPool.runPass(number: 0, intent: intent, records: &poolRecords)
        let overPool = try await steady(viaPool, store: agentStore)
        let poolFloor = try await callFloor(poolKernels)
        await poolKernels.close()
        let controllerPeak = BenchmarkReport.peakResidentMiB()
        let agentsPeak = try child.finish()

        let inProcess = try await steady(direct, store: directStore)
        let rekeyInProcess = try await rekey(direct)
        let text = shape == .cells ? FleetGenerator.cells(nodes: nodes) : FleetGenerator.threeTier(nodes: nodes)
        let cycle = try await ReconcileCycleMeasurement(text: text, intent: intent, cycles: cycles).run()

        var report = BenchmarkReport("agents \(shape.rawValue) \(nodes)")
        report.add("nodes (one agent each)", "\(nodes)", key: "nodes", value: nodes)
        report.add("channels", "\(intent.channels.count)", key: "channels", value: intent.channels.count)
        report.add(
            "observe parallelism", "\(observeParallelism)", key: "observe_parallelism", value: observeParallelism)
        report.seconds("start every agent (child)", child.started, key: "agents_start_seconds")
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
        report.add(
            "agents' process peak memory (all agents)", String(format: "%.1f MiB", agentsPeak),
            key: "agents_peak_rss_mib", value: agentsPeak)
        report.peakMemory()
        try report.print()
    }
}

/// The child process that runs every agent, and the controller's view of it: the port of each
/// node's agent and the controller's credentials, read from a 0600 file in a 0700 directory
/// (never from its output, which carries only `ready` and its peak memory).
final class AgentsChild: Sendable {
    let ports: [String: Int]
    let cluster: String
    let credentials: AgentCredentials
    /// How long the child took to start every agent.
    let started: Duration
    private let process: Process
    private let input: Pipe
    private let output: Pipe
    private let directory: URL

    private init(
        ports: [String: Int], cluster: String, credentials: AgentCredentials, started: Duration, process: Process,
        input: Pipe, output: Pipe, directory: URL
    ) {
        self.ports = ports
        self.cluster = cluster
        self.credentials = credentials
        self.started = started
        self.process = process
        self.input = input
        self.output = output
        self.directory = directory
    }

    /// What the child writes for the controller.
    struct Handoff: Codable {
        var ports: [String: Int]
        var caCertificatePEM: String
        var certificatePEM: String
        var privateKeyPEM: String
        var startSeconds: Double
    }

    /// The cluster CA the child issues its agents' certificates from, when the controller has
    /// one already (a Store's).
    struct Authority: Codable {
        var certificatePEM: String
        var privateKeyDER: [UInt8]
    }

    /// Saves `fleet`, starts the child on it and waits until every agent listens. With `ca`, the
    /// agents' certificates come from it (written to the child's 0700 directory, 0600); else
    /// the child makes a CA of its own.
    static func start(fleet: SimulatedFleet, cluster: String, ca: ClusterCA? = nil) throws -> AgentsChild {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-bench-agents-\(UUID())")
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let fleetFile = directory.appendingPathComponent("fleet.json")
        try fleet.save(to: fleetFile)
        if let ca {
            let file = directory.appendingPathComponent("ca.json")
            _ = FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600])
            try JSONEncoder().encode(Authority(certificatePEM: ca.certificatePEM, privateKeyDER: ca.privateKeyDER))
                .write(to: file)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = [
            "agents", "--serve-fleet", fleetFile.path, "--serve-directory", directory.path, "--cluster-name", cluster,
        ]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        guard let line = readLine(from: output.fileHandleForReading), line == "ready" else {
            process.waitUntilExit()
            throw BenchFailure("the agents' child process did not start (exit \(process.terminationStatus))")
        }
        let handoff = try JSONDecoder().decode(
            Handoff.self, from: Data(contentsOf: directory.appendingPathComponent("controller.json")))
        return AgentsChild(
            ports: handoff.ports, cluster: cluster,
            credentials: AgentCredentials(
                caCertificatePEM: handoff.caCertificatePEM, certificatePEM: handoff.certificatePEM,
                privateKeyPEM: handoff.privateKeyPEM),
            started: .milliseconds(Int64(handoff.startSeconds * 1000)), process: process, input: input,
            output: output, directory: directory)
    }

    /// Tells the child to stop its agents and exit; returns its peak memory in MiB.
    func finish() throws -> Double {
        try input.fileHandleForWriting.close()
        let peak = AgentsChild.readLine(from: output.fileHandleForReading).flatMap(Double.init)
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
        guard let peak else { throw BenchFailure("the agents' child process did not report its memory") }
        return peak
    }

    /// Ends the child if `finish` did not.
    func stop() {
        if process.isRunning { process.terminate() }
        try? FileManager.default.removeItem(at: directory)
    }

    private static func readLine(from handle: FileHandle) -> String? {
        var bytes: [UInt8] = []
        while true {
            let byte = handle.readData(ofLength: 1)
            guard let first = byte.first else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if first == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(first)
        }
    }

    /// The child: one agent per node of the saved fleet, until standard input closes.
    static func serve(fleetFile: String, directory: String, cluster: String) async throws {
        let fleet = try SimulatedFleet.load(from: URL(fileURLWithPath: fleetFile))
        let caFile = URL(fileURLWithPath: directory).appendingPathComponent("ca.json")
        let ca =
            try FileManager.default.fileExists(atPath: caFile.path)
            ? JSONDecoder().decode(Authority.self, from: Data(contentsOf: caFile)).clusterCA(cluster: cluster) : nil
        let clock = ContinuousClock()
        let start = clock.now
        let agents = try await InProcessAgents.start(
            nodes: fleet.state.nodes.keys.sorted(), cluster: cluster, connector: SimulatedConnector(fleet: fleet),
            ca: ca, executor: nil)
        let handoff = Handoff(
            ports: agents.ports, caCertificatePEM: agents.controller.caCertificatePEM,
            certificatePEM: agents.controller.certificatePEM, privateKeyPEM: agents.controller.privateKeyPEM,
            startSeconds: (clock.now - start).seconds)
        let file = URL(fileURLWithPath: directory).appendingPathComponent("controller.json")
        _ = FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600])
        try JSONEncoder().encode(handoff).write(to: file)
        print("ready")
        fflush(nil)
        // Serve until the controller closes our standard input.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                _ = FileHandle.standardInput.readDataToEndOfFile()
                continuation.resume()
            }
        }
        await agents.stop()
        print(String(format: "%.1f", BenchmarkReport.peakResidentMiB()))
        fflush(nil)
    }
}

extension AgentsChild.Authority {
    func clusterCA(cluster: String) throws -> ClusterCA {
        try ClusterCA(cluster: cluster, certificatePEM: certificatePEM, privateKeyDER: privateKeyDER)
    }
}

/// The fleet's nodes, each reached through its agent in the child process.
final class BenchAgentKernels: FleetKernels {
    let knownNodes: Set<String>
    private let kernels: EndpointKernels

    /// - Parameter executor: where the calls run; nil for the connection's event loop (as in
    ///   production).
    init(
        nodes: Set<String>, child: AgentsChild, reqid: Reqid, executor: (any TaskExecutor)? = nil, logger: Logger
    ) {
        knownNodes = nodes
        kernels = EndpointKernels(
            endpoints: child.ports.mapValues { .agent(host: "127.0.0.1", port: UInt16($0)) },
            connectors: [
                AgentConnector(
                    credentials: child.credentials, cluster: child.cluster, addresses: [:], epoch: { 1 },
                    executor: executor, logger: logger)
            ], reqid: reqid)
    }

    func kernel(for node: String) async throws -> any NodeKernel { try await kernels.kernel(for: node) }

    func persist() throws {}

    /// Closes every connection.
    func close() async { await kernels.close() }
}
