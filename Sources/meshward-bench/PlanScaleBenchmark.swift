import ArgumentParser
import DesiredState
import Foundation
import Kernel
import MeshwardCore
import Reconciler
import Store

/// `meshward-bench plan-scale`: compile, desired state and diff for large fleets, in steady
/// state (nothing to change) and with every channel due for a rekey.
///
/// Each (shape, size, scenario) runs in a child process of its own so that its peak memory is
/// its own; the parent prints one table and the JSON lines of every run.
struct PlanScaleBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan-scale",
        abstract: "Time and peak memory of planning full meshes and a three-tier fleet, steady and rekey-everything.")

    @Option(name: .customLong("mesh"), parsing: .upToNextOption, help: "Full-mesh sizes (nodes).")
    var meshSizes: [Int] = [100, 300, 1000]

    @Option(name: .customLong("three-tier"), parsing: .upToNextOption, help: "Three-tier fleet sizes (nodes).")
    var threeTierSizes: [Int] = [3000]

    @Option(
        name: .customLong("command-mesh"), parsing: .upToNextOption,
        help: "Full-mesh sizes (nodes) for the plan command itself, from empty and steady; none to skip.")
    var commandMeshSizes: [Int] = [50, 100, 200, 300, 1000]

    @Option(help: ArgumentHelp("With --only mesh:N:command-seed: the state directory to fill.", visibility: .hidden))
    var seedDirectory: String?

    @Flag(help: "Run only the plan command's cases (each still prints the core planner's figure beside it).")
    var commandOnly = false

    @Option(
        help: ArgumentHelp(
            "Run one case in this process: SHAPE:NODES:SCENARIO (mesh|three-tier, steady|rekey|command-empty|"
                + "command-steady).",
            visibility: .hidden))
    var only: String?

    func run() async throws {
        if let only {
            let parts = only.split(separator: ":").map(String.init)
            guard parts.count == 3, let nodes = Int(parts[1]) else {
                throw ValidationError("--only SHAPE:NODES:SCENARIO")
            }
            if parts[2] == "command-seed", let seedDirectory {
                try await PlanCommandCase.seed(nodes: nodes, into: seedDirectory)
            } else if parts[2].hasPrefix("command-") {
                try await PlanCommandCase(nodes: nodes, scenario: parts[2]).run()
            } else {
                try await PlanScaleCase(shape: parts[0], nodes: nodes, scenario: parts[2]).run()
            }
            return
        }
        var cases: [String] = []
        for size in commandOnly ? [] : meshSizes { cases += ["mesh:\(size):steady", "mesh:\(size):rekey"] }
        for size in commandOnly ? [] : threeTierSizes {
            cases += ["three-tier:\(size):steady", "three-tier:\(size):rekey"]
        }
        let commandCases = commandMeshSizes.flatMap { ["mesh:\($0):command-empty", "mesh:\($0):command-steady"] }
        let all = try ChildCases.run("plan-scale", cases: cases + commandCases)
        let results = Array(all.prefix(cases.count))
        let commandResults = Array(all.dropFirst(cases.count))
        var table = TextTable([
            "shape", "nodes", "channels", "scenario", "compile cpu s", "plan s", "plan cpu s", "µs/channel (cpu)",
            "peak MiB",
        ])
        for result in results {
            let channels = result["channels"] as? Int ?? 0
            let cpu = result["plan_cpu_seconds"] as? Double ?? 0
            table.add([
                result["shape"] as? String ?? "", "\(result["nodes"] as? Int ?? 0)", "\(channels)",
                result["scenario"] as? String ?? "",
                String(format: "%.3f", result["compile_cpu_seconds"] as? Double ?? 0),
                String(format: "%.3f", result["plan_seconds"] as? Double ?? 0), String(format: "%.3f", cpu),
                String(format: "%.2f", channels > 0 ? cpu / Double(channels) * 1e6 : 0),
                String(format: "%.1f", result["peak_rss_mib"] as? Double ?? 0),
            ])
        }
        if !results.isEmpty {
            print("\n== plan-scale summary")
            print(table.rendered)
        }
        guard !commandResults.isEmpty else { return }
        var commands = TextTable([
            "nodes", "channels", "scenario", "core planner cpu s", "plan command s", "plan command cpu s",
            "command/core (cpu)", "µs/channel (cpu)", "operations", "peak MiB",
        ])
        for result in commandResults {
            commands.add([
                "\(result["nodes"] as? Int ?? 0)", "\(result["channels"] as? Int ?? 0)",
                result["scenario"] as? String ?? "",
                String(format: "%.3f", result["core_plan_cpu_seconds"] as? Double ?? 0),
                String(format: "%.3f", result["command_seconds"] as? Double ?? 0),
                String(format: "%.3f", result["command_cpu_seconds"] as? Double ?? 0),
                String(format: "%.1f×", result["command_to_core_ratio"] as? Double ?? 0),
                String(format: "%.2f", result["command_cpu_us_per_channel"] as? Double ?? 0),
                "\(result["command_operations"] as? Int ?? 0)",
                String(format: "%.1f", result["peak_rss_mib"] as? Double ?? 0),
            ])
        }
        print("\n== plan command (meshward plan) beside the core planner")
        print(commands.rendered)
    }
}

/// One case of `plan-scale`, in this process.
struct PlanScaleCase {
    let shape: String
    let nodes: Int
    let scenario: String

    func run() async throws {
        let text = shape == "mesh" ? FleetGenerator.fullMesh(nodes: nodes) : FleetGenerator.threeTier(nodes: nodes)
        let written = try FleetGenerator.write(text)
        defer { try? FileManager.default.removeItem(at: written.directory) }
        let (loaded, compileTime) = measureCPU { SpecLoader().load(paths: [written.file]) }
        guard let intent = loaded.intent else {
            throw ValidationError("generated spec invalid: \(loaded.diagnostics.prefix(2))")
        }

        // The fleet as a converged controller would find it: one active generation per channel,
        // every kernel holding exactly its objects.
        let now = Date()
        let reqid = Reqid(intent.reqid)
        let fleet = ConvergedFleet(intent: intent, at: now)
        let records = fleet.records
        var requests: [ChannelID: Date] = [:]
        if scenario == "rekey" {
            for id in records.keys { requests[id] = now }
        }
        let input = PlanningInput(
            intent: intent, channels: records, observations: fleet.observations,
            knownNodes: Set(intent.nodes.map(\.name)),
            rekeyRequests: requests, reqid: reqid, now: now.addingTimeInterval(1))
        let setupPeak = BenchmarkReport.peakResidentMiB()

        let planner = FleetPlanner()
        let (plan, planTime) = await measure { planner.plan(input) }
        let (_, planCPU) = measureCPU { planner.plan(input) }
        var report = BenchmarkReport("plan-scale \(shape) \(nodes) \(scenario)")
        report.add("shape", shape, key: "shape")
        report.add("nodes", "\(nodes)", key: "nodes", value: nodes)
        report.add("scenario", scenario, key: "scenario")
        report.add("channels", "\(intent.channels.count)", key: "channels", value: intent.channels.count)
        report.seconds("compile (load+validate+compile, CPU)", compileTime, key: "compile_cpu_seconds")
        report.seconds("plan (desired state + diff + staging)", planTime, key: "plan_seconds")
        report.seconds("plan, CPU time of a second run (all threads)", planCPU, key: "plan_cpu_seconds")
        report.add("operations planned", "\(plan.operationCount)", key: "operations", value: plan.operationCount)
        report.add(
            "generations requested", "\(plan.generationRequests.count)", key: "generations_requested",
            value: plan.generationRequests.count)
        switch scenario {
        case "steady":
            guard plan.operationCount == 0, plan.generationRequests.isEmpty else {
                throw ValidationError("steady state planned \(plan.operationCount) operations: a defect")
            }
        default:
            guard plan.generationRequests.count == intent.channels.count else {
                throw ValidationError("rekey-everything asked for \(plan.generationRequests.count) generations")
            }
            // Issue the generations in memory and plan the first stage of the rekey.
            let store = ScratchGenerationStore(channels: records)
            let (issued, issueTime) = try measureCPU {
                try store.issueGenerations(plan.generationRequests.map(\.request), now: input.now)
            }
            var second = input
            for generation in issued { second.channels[generation.channel]?.generations.append(generation) }
            let (staged, stageTime) = measureCPU { planner.plan(second) }
            guard staged.operationCount == intent.channels.count else {
                throw ValidationError(
                    "the first rekey stage has \(staged.operationCount) operations, not one per channel")
            }
            report.seconds("issue generations (in memory, CPU)", issueTime, key: "issue_cpu_seconds")
            report.seconds("plan first rekey stage (CPU)", stageTime, key: "stage_cpu_seconds")
            report.add(
                "first stage operations", "\(staged.operationCount)", key: "stage_operations",
                value: staged.operationCount)
        }
        report.add(
            "peak memory after setup", String(format: "%.1f MiB", setupPeak), key: "setup_rss_mib", value: setupPeak)
        report.peakMemory()
        try report.print()
    }
}
