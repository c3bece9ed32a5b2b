import ArgumentParser
import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Reconciler
import Store

/// `meshward-bench apply-sim`: converging a fleet from empty kernels on the simulated kernel,
/// through `FleetReconciler.converge` exactly as `apply` runs it: every pass observes every
/// node, plans, issues generations and applies each node's operations (nodes in parallel).
///
/// The generations go to a `ScratchGenerationStore` (in memory, no SQLite: the figures are the
/// controller's own cost) or, with `--store sqlite-memory`, to `StateStore.inMemory` (SQLite in
/// memory: key sealing, generation rows, the journal). Each fleet runs in a child process of
/// its own so that its peak memory is its own.
struct ApplySimBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply-sim",
        abstract: "Converge fleets from empty on the simulated kernel: passes, operations, time, peak memory."
    )

    @Option(name: .customLong("three-tier"), parsing: .upToNextOption, help: "Three-tier fleet sizes (nodes).")
    var threeTierSizes: [Int] = [1000]

    @Option(name: .customLong("mesh"), parsing: .upToNextOption, help: "Full-mesh sizes (nodes).")
    var meshSizes: [Int] = [200]

    @Option(help: "Where generations go: scratch (in memory, no SQLite) or sqlite-memory (StateStore.inMemory).")
    var store: StoreKind = .scratch

    @Option(
        help: ArgumentHelp("Run one case in this process: SHAPE:NODES (mesh|three-tier).", visibility: .hidden))
    var only: String?

    enum StoreKind: String, ExpressibleByArgument, CaseIterable {
        case scratch
        case sqliteMemory = "sqlite-memory"
    }

    func run() async throws {
        if let only {
            let parts = only.split(separator: ":").map(String.init)
            guard parts.count == 2, let nodes = Int(parts[1]), ["mesh", "three-tier"].contains(parts[0]) else {
                throw ValidationError("--only SHAPE:NODES")
            }
            try await runCase(shape: parts[0], nodes: nodes)
            return
        }
        let cases = threeTierSizes.map { "three-tier:\($0)" } + meshSizes.map { "mesh:\($0)" }
        let results = try ChildCases.run("apply-sim", cases: cases, extraArguments: ["--store", store.rawValue])
        var table = TextTable([
            "shape", "nodes", "channels", "store", "passes", "operations", "converge s", "converge cpu s",
            "µs/op (cpu)", "peak MiB",
        ])
        for result in results {
            let operations = result["operations"] as? Int ?? 0
            let cpu = result["converge_cpu_seconds"] as? Double ?? 0
            table.add([
                result["shape"] as? String ?? "", "\(result["nodes"] as? Int ?? 0)",
                "\(result["channels"] as? Int ?? 0)",
                result["store"] as? String ?? "", "\(result["passes"] as? Int ?? 0)", "\(operations)",
                String(format: "%.2f", result["converge_seconds"] as? Double ?? 0), String(format: "%.2f", cpu),
                String(format: "%.2f", operations > 0 ? cpu / Double(operations) * 1e6 : 0),
                String(format: "%.1f", result["peak_rss_mib"] as? Double ?? 0),
            ])
        }
        print("\n== apply-sim summary")
        print(table.rendered)
    }

    private func runCase(shape: String, nodes: Int) async throws {
        let text = shape == "mesh" ? FleetGenerator.fullMesh(nodes: nodes) : FleetGenerator.threeTier(nodes: nodes)
        let written = try FleetGenerator.write(text)
        defer { try? FileManager.default.removeItem(at: written.directory) }
        let loaded = SpecLoader().load(paths: [written.file])
        guard let intent = loaded.intent else {
            throw BenchFailure("generated spec invalid: \(loaded.diagnostics.prefix(2))")
        }
        let reqid = Reqid(intent.reqid)
        let logger = Logger(label: "meshward.bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let fleet = SimulatedFleet()
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
        let generations: any PassStore
        switch store {
        case .scratch: generations = ScratchGenerationStore(channels: [:])
        case .sqliteMemory:
            generations = try StateStore.inMemory(masterKey: try KeyMaterial.random(count: 32), logger: logger)
        }
        let reconciler = FleetReconciler(
            store: generations, kernels: SimulatedFleetKernels(fleet: fleet, reqid: reqid), reqid: reqid,
            clock: ManualClock(), logger: logger)
        let setupPeak = BenchmarkReport.peakResidentMiB()

        var passTable = TextTable(["pass", "operations", "generations issued", "wall s", "cpu s"])
        let clock = ContinuousClock()
        var passStart = (wall: clock.now, cpu: processCPUTime())
        let converged = try await measureBoth {
            try await reconciler.converge(intent: intent, waitForDrain: true) { pass in
                let now = (wall: clock.now, cpu: processCPUTime())
                passTable.add([
                    "\(pass.number)", "\(pass.results.count)", "\(pass.issued.count)",
                    String(format: "%.2f", (now.wall - passStart.wall).seconds),
                    String(format: "%.2f", (now.cpu - passStart.cpu).seconds),
                ])
                passStart = (clock.now, processCPUTime())
            }
        }
        let outcome = converged.result
        guard outcome.outcome == .converged else { throw BenchFailure("the fleet ended \(outcome.outcome)") }
        let objects = fleet.withState { state in
            state.nodes.keys.reduce(0) { total, node in
                let observation = try? state.observe(node: node, reqid: reqid)
                return total + (observation.map { $0.securityAssociations.count + $0.policies.count } ?? 0)
            }
        }
        guard objects == 4 * intent.channels.count else {
            throw BenchFailure(
                "the kernels hold \(objects) objects, expected 4 per channel (\(4 * intent.channels.count))")
        }

        var report = BenchmarkReport("apply-sim \(shape) \(nodes)")
        report.add("shape", shape, key: "shape")
        report.add("nodes", "\(nodes)", key: "nodes", value: nodes)
        report.add("channels", "\(intent.channels.count)", key: "channels", value: intent.channels.count)
        report.add("store", store.rawValue, key: "store")
        report.add("kernel objects at the end", "\(objects)", key: "objects", value: objects)
        report.add("passes", "\(outcome.passes.count)", key: "passes", value: outcome.passes.count)
        report.add("operations", "\(outcome.operationCount)", key: "operations", value: outcome.operationCount)
        report.seconds("converge (wall)", converged.wall, key: "converge_seconds")
        report.seconds("converge (CPU, all threads)", converged.cpu, key: "converge_cpu_seconds")
        report.add(
            "peak memory after setup", String(format: "%.1f MiB", setupPeak), key: "setup_rss_mib", value: setupPeak)
        report.peakMemory()
        report.add(passTable)
        try report.print()
    }
}
