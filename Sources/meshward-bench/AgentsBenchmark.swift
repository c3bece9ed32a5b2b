import AgentTestSupport
import ArgumentParser
import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Reconciler

/// `meshward-bench agents`: a fleet of in-process agents on loopback (real gRPC and mutual TLS,
/// simulated kernels behind them) against the same fleet reached in process with no transport.
///
/// The fleet is first converged in process; then each figure is one steady pass (observe every
/// node, plan, nothing to send) and a full rekey (every channel rotated on request, the passes
/// of one `converge`), first in process, then through the agents.
struct AgentsBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agents",
        abstract: "Steady pass and full rekey of a three-tier fleet behind in-process agents vs in process.")

    @Option(help: "Nodes of the three-tier fleet, each behind its own agent.")
    var nodes = 1000

    @Option(help: "Steady passes to time on each side (the median is reported).")
    var repeats = 5

    func run() async throws {
        let written = try FleetGenerator.write(FleetGenerator.threeTier(nodes: nodes))
        defer { try? FileManager.default.removeItem(at: written.directory) }
        let loaded = SpecLoader().load(paths: [written.file])
        guard let intent = loaded.intent else { throw BenchFailure("generated spec invalid") }
        let reqid = Reqid(intent.reqid)
        let logger = Logger(label: "meshward.bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let fleet = SimulatedFleet()
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
        let store = ScratchGenerationStore(channels: [:])
        let clock = ManualClock()
        let direct = FleetReconciler(
            store: store, kernels: SimulatedFleetKernels(fleet: fleet, reqid: reqid), reqid: reqid, clock: clock,
            logger: logger)
        let initial = try await direct.converge(intent: intent, waitForDrain: true)
        guard initial.outcome == .converged else { throw BenchFailure("the fleet ended \(initial.outcome)") }

        let setupClock = ContinuousClock()
        let setupStart = setupClock.now
        let agents = try await InProcessAgents.start(
            nodes: intent.nodes.map(\.name), cluster: intent.cluster, connector: SimulatedConnector(fleet: fleet),
            executor: nil)
        let agentsStarted = setupClock.now - setupStart
        let viaAgents = FleetReconciler(
            store: store, kernels: BenchAgentKernels(fleet: fleet, agents: agents, reqid: reqid), reqid: reqid,
            clock: clock, logger: logger)

        func steady(_ reconciler: FleetReconciler) async throws -> (wall: Duration, cpu: Duration) {
            var samples: [(Duration, Duration)] = []
            for number in 1...repeats {
                var records = try store.loadChannels()
                let measured = try await measureBoth {
                    try await reconciler.runPass(number: number, intent: intent, records: &records)
                }
                guard measured.result.results.isEmpty, measured.result.unreachable.isEmpty else {
                    throw BenchFailure(
                        "a steady pass sent \(measured.result.results.count) operations, "
                            + "\(measured.result.unreachable.count) nodes unreachable")
                }
                samples.append((measured.wall, measured.cpu))
            }
            let sorted = samples.sorted { $0.0 < $1.0 }
            return sorted[sorted.count / 2]
        }
        // The first pass through the agents also makes every TLS connection: timed on its own.
        var warmRecords = try store.loadChannels()
        let firstContact = try await measureBoth {
            try await viaAgents.runPass(number: 0, intent: intent, records: &warmRecords)
        }
        let inProcess = try await steady(direct)
        let overAgents = try await steady(viaAgents)

        func rekey(_ reconciler: FleetReconciler) async throws -> (passes: Int, operations: Int, wall: Duration) {
            clock.advance(by: 1)
            let requests = Dictionary(uniqueKeysWithValues: intent.channels.map { ($0.id, clock.now()) })
            let started = ContinuousClock.now
            let report = try await reconciler.converge(intent: intent, waitForDrain: false, rekeyRequests: requests)
            // Finish the drains on the manual clock so the next rekey starts from a converged fleet.
            clock.advance(by: 60)
            let drained = try await reconciler.converge(intent: intent, waitForDrain: true)
            guard drained.outcome == .converged else { throw BenchFailure("the rekey ended \(drained.outcome)") }
            return (
                report.passes.count + drained.passes.count, report.operationCount + drained.operationCount,
                ContinuousClock.now - started
            )
        }
        let rekeyInProcess = try await rekey(direct)
        let rekeyOverAgents = try await rekey(viaAgents)
        await agents.stop()

        var report = BenchmarkReport("agents three-tier \(nodes)")
        report.add("nodes (one agent each)", "\(nodes)", key: "nodes", value: nodes)
        report.add("channels", "\(intent.channels.count)", key: "channels", value: intent.channels.count)
        report.seconds("start every agent", agentsStarted, key: "agents_start_seconds")
        report.seconds("first pass through agents (connects)", firstContact.wall, key: "first_contact_seconds")
        report.seconds("steady pass in process (wall)", inProcess.wall, key: "steady_in_process_seconds")
        report.seconds("steady pass over agents (wall)", overAgents.wall, key: "steady_agents_seconds")
        report.seconds("steady pass over agents (CPU)", overAgents.cpu, key: "steady_agents_cpu_seconds")
        let ratio = overAgents.wall.seconds / max(inProcess.wall.seconds, 1e-9)
        report.add("transport overhead (wall ratio)", String(format: "%.2fx", ratio), key: "steady_ratio", value: ratio)
        report.add(
            "full rekey in process", "\(rekeyInProcess.passes) passes, \(rekeyInProcess.operations) operations",
            key: "rekey_in_process_passes", value: rekeyInProcess.passes)
        report.seconds("full rekey in process (wall)", rekeyInProcess.wall, key: "rekey_in_process_seconds")
        report.add(
            "full rekey over agents", "\(rekeyOverAgents.passes) passes, \(rekeyOverAgents.operations) operations",
            key: "rekey_agents_passes", value: rekeyOverAgents.passes)
        report.seconds("full rekey over agents (wall)", rekeyOverAgents.wall, key: "rekey_agents_seconds")
        report.peakMemory()
        try report.print()
    }
}

/// The fleet's nodes, each reached through its in-process agent.
final class BenchAgentKernels: FleetKernels {
    let fleet: SimulatedFleet
    private let kernels: EndpointKernels

    init(fleet: SimulatedFleet, agents: InProcessAgents, reqid: Reqid) {
        self.fleet = fleet
        kernels = EndpointKernels(endpoints: agents.endpoints, connectors: [agents.connector()], reqid: reqid)
    }

    var knownNodes: Set<String> { Set(fleet.withState { $0.nodes.keys }) }

    func kernel(for node: String) async throws -> any NodeKernel { try await kernels.kernel(for: node) }

    func persist() throws {}
}
