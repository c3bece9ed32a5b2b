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

    @Option(help: ArgumentHelp("Run one case in this process: SHAPE:NODES:SCENARIO (mesh|three-tier, steady|rekey).",
                               visibility: .hidden))
    var only: String?

    func run() async throws {
        if let only {
            let parts = only.split(separator: ":").map(String.init)
            guard parts.count == 3, let nodes = Int(parts[1]) else { throw ValidationError("--only SHAPE:NODES:SCENARIO") }
            try await PlanScaleCase(shape: parts[0], nodes: nodes, scenario: parts[2]).run()
            return
        }
        var cases: [String] = []
        for size in meshSizes { cases += ["mesh:\(size):steady", "mesh:\(size):rekey"] }
        for size in threeTierSizes { cases += ["three-tier:\(size):steady", "three-tier:\(size):rekey"] }
        var results: [[String: Any]] = []
        for item in cases {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            process.arguments = ["plan-scale", "--only", item]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let text = String(decoding: data, as: UTF8.self)
            print(text, terminator: "")
            guard process.terminationStatus == 0,
                let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            else {
                throw ValidationError("case \(item) failed (exit \(process.terminationStatus))")
            }
            results.append(object)
        }
        print("\n== plan-scale summary")
        print("shape        nodes   channels  scenario  compile s   plan s    plan cpu s  µs/channel  peak MiB")
        for result in results {
            let channels = result["channels"] as? Int ?? 0
            let plan = result["plan_seconds"] as? Double ?? 0
            let cpu = result["plan_cpu_seconds"] as? Double ?? 0
            let line = [
                (result["shape"] as? String ?? "").padding(toLength: 11, withPad: " ", startingAt: 0),
                String(format: "%6d", result["nodes"] as? Int ?? 0), String(format: "%10d", channels),
                (result["scenario"] as? String ?? "").padding(toLength: 8, withPad: " ", startingAt: 0),
                String(format: "%9.3f", result["compile_cpu_seconds"] as? Double ?? 0), String(format: "%9.3f", plan),
                String(format: "%11.3f", cpu), String(format: "%11.2f", channels > 0 ? cpu / Double(channels) * 1e6 : 0),
                String(format: "%9.1f", result["peak_rss_mib"] as? Double ?? 0),
            ]
            print(line.joined(separator: " "))
        }
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
        guard let intent = loaded.intent else { throw ValidationError("generated spec invalid: \(loaded.diagnostics.prefix(2))") }

        // The fleet as a converged controller would find it: one active generation per channel,
        // every kernel holding exactly its objects.
        let now = Date()
        let reqid = Reqid(intent.reqid)
        var records: [ChannelID: ChannelRecord] = [:]
        var sas: [String: [SecurityAssociation]] = [:]
        var policies: [String: [SecurityPolicy]] = [:]
        var spi: UInt32 = SPI.minimumIssued
        var keySource = SplitMix(seed: 42)
        for channel in intent.channels {
            spi += 1
            let key = KeyMaterial(bytes: (0..<channel.cipher.keyLength).map { _ in UInt8(truncatingIfNeeded: keySource.next()) })
            let generation = Generation(
                channel: channel.id, number: 1, spi: SPI(spi), cipher: channel.cipher, key: key, source: channel.source,
                destination: channel.destination, createdAt: now.addingTimeInterval(-3600), state: .active,
                activatedAt: now.addingTimeInterval(-3600))
            records[channel.id] = ChannelRecord(
                id: channel.id, step: ChannelStep.established.rawValue, stepChangedAt: now, generations: [generation])
            let sa = SecurityAssociation(
                source: channel.source, destination: channel.destination, spi: SPI(spi), reqid: reqid,
                cipher: channel.cipher, key: .material(key))
            sas[channel.id.from, default: []].append(sa)
            sas[channel.id.to, default: []].append(sa)
            for traffic in channel.traffic {
                let selector = PolicySelector(
                    source: IPPrefix(host: channel.source), destination: IPPrefix(host: channel.destination), traffic: traffic)
                policies[channel.id.from, default: []].append(SecurityPolicy(
                    selector: selector, direction: .outbound,
                    template: PolicyTemplate(family: channel.id.family, spi: SPI(spi), reqid: reqid, isOptional: false)))
                policies[channel.id.to, default: []].append(SecurityPolicy(
                    selector: selector, direction: .inbound,
                    template: PolicyTemplate(family: channel.id.family, spi: nil, reqid: reqid, isOptional: false)))
            }
        }
        var observations: [String: NodeObservation] = [:]
        for node in intent.nodes {
            observations[node.name] = NodeObservation(
                securityAssociations: sas[node.name] ?? [], policies: policies[node.name] ?? [])
        }
        sas = [:]
        policies = [:]
        var requests: [ChannelID: Date] = [:]
        if scenario == "rekey" {
            for id in records.keys { requests[id] = now }
        }
        let input = PlanningInput(
            intent: intent, channels: records, observations: observations, knownNodes: Set(intent.nodes.map(\.name)),
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
        report.add("generations requested", "\(plan.generationRequests.count)", key: "generations_requested",
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
                throw ValidationError("the first rekey stage has \(staged.operationCount) operations, not one per channel")
            }
            report.seconds("issue generations (in memory, CPU)", issueTime, key: "issue_cpu_seconds")
            report.seconds("plan first rekey stage (CPU)", stageTime, key: "stage_cpu_seconds")
            report.add("first stage operations", "\(staged.operationCount)", key: "stage_operations",
                       value: staged.operationCount)
        }
        report.add("peak memory after setup", String(format: "%.1f MiB", setupPeak), key: "setup_rss_mib", value: setupPeak)
        report.peakMemory()
        try report.print()
    }
}

/// A fast generator for benchmark key bytes (not for real keys: those come from OpenSSL).
struct SplitMix {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
