import ArgumentParser
import Controller
import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCommands
import MeshwardCore
import Reconciler
import Store

/// One `plan-scale` case of the `plan` command itself (`MeshwardController.plan`: read the
/// Store and the simulated fleet file, rehearse every pass on copies, build the document, render
/// the text), next to the core planner's figure for the same input in the same process.
///
/// - `command-empty`: a fresh state directory; the plan creates every channel (the rehearsal
///   runs every pass of the staging). The core figure is the planner's first pass from empty.
///   Up to `applyFromEmptyLimit` channels, `apply` from empty follows, in a directory of its own.
/// - `command-steady`: a state directory holding a converged fleet (a SQLite Store with one
///   active generation per channel, sealed, and the simulated kernels holding exactly their
///   objects); the plan has no operation. The core figure is the planner on the same fleet.
///   `plan --refresh=false`, `status` and a steady `apply` follow, each measured on its own.
struct PlanCommandCase {
    /// The largest fleet `command-empty` also applies from empty (the 300-node mesh): beyond
    /// it, five operations per channel take longer than the rest of the benchmark together.
    static let applyFromEmptyLimit = 100_000

    let nodes: Int
    let scenario: String

    func run() async throws {
        let text = FleetGenerator.fullMesh(nodes: nodes)
        let written = try FleetGenerator.write(text)
        defer { try? FileManager.default.removeItem(at: written.directory) }
        guard let intent = SpecLoader().load(paths: [written.file]).intent else {
            throw ValidationError("generated spec invalid")
        }
        let stateDirectory = try FleetGenerator.temporaryDirectory().appendingPathComponent("state")
        defer { try? FileManager.default.removeItem(at: stateDirectory.deletingLastPathComponent()) }
        let silent = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let now = Date()

        var report = BenchmarkReport("plan-scale mesh \(nodes) \(scenario)")
        report.add("shape", "mesh", key: "shape")
        report.add("nodes", "\(nodes)", key: "nodes", value: nodes)
        report.add("scenario", scenario, key: "scenario")
        report.add("channels", "\(intent.channels.count)", key: "channels", value: intent.channels.count)

        // The core figure first, in its own scope, so that its inputs are freed before the
        // command runs and the command's peak memory (VmHWM, reset in between) is its own.
        let (coreCPU, coreOperations, coreRequests) = try await measureCore(
            intent, stateDirectory: stateDirectory, now: now, report: &report)
        report.seconds("core: planner on the same input (CPU)", coreCPU, key: "core_plan_cpu_seconds")
        report.add("core: operations planned", "\(coreOperations)", key: "core_operations", value: coreOperations)
        report.add(
            "core: generations requested", "\(coreRequests)", key: "core_generations_requested", value: coreRequests)
        let beforeCommand = MemoryStatus.read().residentMiB
        MemoryStatus.resetPeak()

        let controller = MeshwardController(stateDirectory: stateDirectory.path, logger: silent)
        let (rendered, wall, cpu) = try await measureBoth {
            let document = try await controller.plan(intent)
            return (document, PlanText(document, verbose: true).text)
        }
        let document = rendered.0
        report.seconds("command: plan (Store, rehearsal, document, verbose text)", wall, key: "command_seconds")
        report.seconds("command: CPU time (all threads)", cpu, key: "command_cpu_seconds")
        report.add(
            "command: kernel operations in the plan", "\(document.summary.operations)", key: "command_operations",
            value: document.summary.operations)
        report.add("command: stages", "\(document.stages.count)", key: "command_stages", value: document.stages.count)
        report.add("command: text lines", "\(rendered.1.split(separator: "\n").count)")
        let ratio = coreCPU.seconds > 0 ? cpu.seconds / coreCPU.seconds : 0
        report.add(
            "command CPU / core planner CPU", String(format: "%.1f×", ratio), key: "command_to_core_ratio",
            value: ratio)
        let perChannel = cpu.seconds / Double(max(1, intent.channels.count)) * 1e6
        report.add(
            "command CPU per channel", String(format: "%.2f µs", perChannel), key: "command_cpu_us_per_channel",
            value: perChannel)

        switch scenario {
        case "command-empty":
            guard document.summary.channelsCreated == intent.channels.count,
                document.summary.operations == 5 * intent.channels.count
            else {
                throw ValidationError(
                    "plan from empty: \(document.summary.channelsCreated) created, "
                        + "\(document.summary.operations) operations")
            }
        default:
            guard document.summary.operations == 0, document.generations.isEmpty else {
                throw ValidationError("steady plan has \(document.summary.operations) operations: a defect")
            }
        }
        let commandPeak = MemoryStatus.read().peakMiB
        report.add(
            "command: peak memory (VmHWM since the command started)", String(format: "%.1f MiB", commandPeak),
            key: "command_peak_mib", value: commandPeak)
        report.add(
            "resident before the command", String(format: "%.1f MiB", beforeCommand), key: "resident_before_mib",
            value: beforeCommand)
        if scenario == "command-steady" {
            try await measureSteadyCommands(intent, controller: controller, report: &report)
        } else if intent.channels.count <= Self.applyFromEmptyLimit {
            try await measureApplyFromEmpty(intent, report: &report)
        }
        report.peakMemory()
        try report.print()
    }

    /// On the converged state directory, after `plan`: `plan --refresh=false`, `status` and a
    /// steady `apply` (nothing to change), each with its wall and CPU time and its peak memory
    /// (VmHWM reset before each; the resident memory before it is reported beside it).
    private func measureSteadyCommands(
        _ intent: FleetIntent, controller: MeshwardController, report: inout BenchmarkReport
    ) async throws {
        try await measureCommand("plan --refresh=false", key: "unread", report: &report) {
            let document = try await controller.plan(intent, refresh: false)
            guard document.summary.operations == 0, document.kernelsRead == false else {
                throw ValidationError("plan --refresh=false of the converged fleet has operations: a defect")
            }
            _ = PlanText(document, verbose: true).text
        }
        try await measureCommand("status", key: "status", report: &report) {
            let document = try await controller.status()
            guard document.nodes.count == intent.nodes.count else {
                throw ValidationError("status lists \(document.nodes.count) of \(intent.nodes.count) nodes")
            }
        }
        try await measureCommand("apply (steady: nothing to change)", key: "apply_steady", report: &report) {
            let document = try await controller.apply(intent, source: "bench", waitForDrain: false)
            guard document.operations == 0 else {
                throw ValidationError("steady apply made \(document.operations) operations: a defect")
            }
        }
    }

    /// `apply` from empty into a fresh state directory of its own: every channel created.
    private func measureApplyFromEmpty(_ intent: FleetIntent, report: inout BenchmarkReport) async throws {
        let directory = try FleetGenerator.temporaryDirectory().appendingPathComponent("state")
        defer { try? FileManager.default.removeItem(at: directory.deletingLastPathComponent()) }
        let silent = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let controller = MeshwardController(stateDirectory: directory.path, logger: silent)
        try await measureCommand("apply from empty", key: "apply_empty", report: &report) {
            let document = try await controller.apply(intent, source: "bench", waitForDrain: false)
            guard document.operations == 5 * intent.channels.count else {
                throw ValidationError("apply from empty made \(document.operations) operations")
            }
        }
    }

    /// Runs `body` once: its wall and CPU time and its peak memory under `key`.
    private func measureCommand(
        _ name: String, key: String, report: inout BenchmarkReport, _ body: () async throws -> Void
    ) async throws {
        let before = MemoryStatus.read().residentMiB
        MemoryStatus.resetPeak()
        let (_, wall, cpu) = try await measureBoth { try await body() }
        let peak = MemoryStatus.read().peakMiB
        report.seconds("\(name) (wall)", wall, key: "\(key)_seconds")
        report.seconds("\(name) (CPU)", cpu, key: "\(key)_cpu_seconds")
        report.add(
            "\(name): peak memory (resident before: \(String(format: "%.0f", before)) MiB)",
            String(format: "%.1f MiB", peak), key: "\(key)_peak_mib", value: peak)
    }

    /// The core planner's CPU time on the command's input, as plan-scale measures it: steady,
    /// the planner on the converged fleet (seeded into `stateDirectory` first); from empty, the
    /// pass that asks for every generation, issuing them in memory, and the pass that plans the
    /// first stage (plan-scale's rekey-everything case, from nothing).
    private func measureCore(
        _ intent: FleetIntent, stateDirectory: URL, now: Date, report: inout BenchmarkReport
    ) async throws -> (Duration, Int, Int) {
        let reqid = Reqid(intent.reqid)
        let input: PlanningInput
        switch scenario {
        case "command-empty":
            var empty: [String: NodeObservation] = [:]
            for node in intent.nodes { empty[node.name] = NodeObservation() }
            input = PlanningInput(
                intent: intent, channels: [:], observations: empty, knownNodes: Set(intent.nodes.map(\.name)),
                reqid: reqid, now: now)
        case "command-steady":
            // Seeded by a child process, so that what seeding allocates is not in this one.
            let (_, seedTime, _) = try await measureBoth {
                _ = try ChildCases.run(
                    "plan-scale", cases: ["mesh:\(nodes):command-seed"],
                    extraArguments: ["--seed-directory", stateDirectory.path])
            }
            report.seconds(
                "seed the state directory (child process, not part of the plan)", seedTime, key: "seed_seconds")
            let silent = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
            let records = try StateStore.open(directory: stateDirectory.path, logger: silent).loadChannels()
            let fleet = try SimulatedFleet.load(from: stateDirectory.appendingPathComponent("simulated-fleet.sqlite"))
            let state = fleet.state
            var observations: [String: NodeObservation] = [:]
            for node in intent.nodes { observations[node.name] = try state.observe(node: node.name, reqid: reqid) }
            input = PlanningInput(
                intent: intent, channels: records, observations: observations,
                knownNodes: Set(intent.nodes.map(\.name)), reqid: reqid, now: now.addingTimeInterval(1))
        default:
            throw ValidationError("unknown scenario \(scenario)")
        }
        let planner = FleetPlanner()
        let ((operations, requests), cpu) = try measureCPU { () throws -> (Int, Int) in
            let first = planner.plan(input)
            guard !first.generationRequests.isEmpty else { return (first.operationCount, 0) }
            let scratch = ScratchGenerationStore(channels: input.channels)
            let issued = try scratch.issueGenerations(first.generationRequests.map(\.request), now: input.now)
            var second = input
            for generation in issued {
                second.channels[
                    generation.channel,
                    default: ChannelRecord(
                        id: generation.channel, step: .new, stepChangedAt: input.now,
                        generations: [])
                ]
                .generations.append(generation)
            }
            return (planner.plan(second).operationCount, first.generationRequests.count)
        }
        return (cpu, operations, requests)
    }

    /// `command-seed`: writes the converged fleet of `nodes` into `directory` and prints a
    /// one-line report (the parent of a `command-steady` case runs this as its child).
    static func seed(nodes: Int, into directory: String) async throws {
        let written = try FleetGenerator.write(FleetGenerator.fullMesh(nodes: nodes))
        defer { try? FileManager.default.removeItem(at: written.directory) }
        guard let intent = SpecLoader().load(paths: [written.file]).intent else {
            throw ValidationError("generated spec invalid")
        }
        let (_, time) = try measureCPU {
            try PlanCommandCase(nodes: nodes, scenario: "command-seed")
                .seedConvergedState(intent, at: URL(fileURLWithPath: directory))
        }
        // What an apply of this spec records, for `plan --refresh=false`.
        let silent = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        try await AppliedSpec.record(intent, in: try StateStore.open(directory: directory, logger: silent))
        var report = BenchmarkReport("plan-scale mesh \(nodes) seed")
        report.seconds("seed (CPU)", time, key: "seed_cpu_seconds")
        report.peakMemory()
        try report.print()
    }

    /// Writes a converged fleet into `directory`: the Store issues one generation per channel
    /// (sealed, as `apply` would) and marks it active; the simulated fleet file holds each
    /// channel's two SAs and two policies.
    func seedConvergedState(
        _ intent: FleetIntent, at directory: URL
    ) throws -> (records: [ChannelID: ChannelRecord], observations: [String: NodeObservation]) {
        let silent = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let store = try StateStore.open(directory: directory.path, logger: silent)
        let created = Date().addingTimeInterval(-3600)
        var records: [ChannelID: ChannelRecord] = [:]
        let batch = 50_000
        var start = 0
        while start < intent.channels.count {
            let slice = intent.channels[start..<min(start + batch, intent.channels.count)]
            let issued = try store.issueGenerations(
                slice.map {
                    GenerationRequest(
                        channel: $0.id, cipher: $0.cipher, source: $0.source, destination: $0.destination)
                }, now: created)
            let active = issued.map { generation -> ChannelRecord in
                var generation = generation
                generation.state = .active
                generation.activatedAt = created
                return ChannelRecord(
                    id: generation.channel, step: .established, stepChangedAt: created,
                    generations: [generation])
            }
            try store.update(active)
            for record in active { records[record.id] = record }
            start += batch
        }

        let reqid = Reqid(intent.reqid)
        var state = SimulatedFleetState()
        for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        for channel in intent.channels {
            guard let generation = records[channel.id]?.generations.first else { continue }
            let sa = SecurityAssociation(
                source: channel.source, destination: channel.destination, spi: generation.spi, reqid: reqid,
                cipher: channel.cipher, key: .material(generation.key))
            _ = state.apply(.addSA(sa), on: channel.id.from)
            _ = state.apply(.addSA(sa), on: channel.id.to)
            for traffic in channel.traffic {
                let selector = PolicySelector(
                    source: IPPrefix(host: channel.source), destination: IPPrefix(host: channel.destination),
                    traffic: traffic)
                _ = state.apply(
                    .addPolicy(
                        SecurityPolicy(
                            selector: selector, direction: .outbound,
                            template: PolicyTemplate(
                                family: channel.id.family, spi: generation.spi, reqid: reqid, isOptional: false))),
                    on: channel.id.from)
                _ = state.apply(
                    .addPolicy(
                        SecurityPolicy(
                            selector: selector, direction: .inbound,
                            template: PolicyTemplate(
                                family: channel.id.family, spi: nil, reqid: reqid,
                                isOptional: channel.enforcement == .permissive))),
                    on: channel.id.to)
            }
        }
        var observations: [String: NodeObservation] = [:]
        for node in intent.nodes { observations[node.name] = try state.observe(node: node.name, reqid: reqid) }
        try state.save(to: directory.appendingPathComponent("simulated-fleet.sqlite"))
        return (records, observations)
    }
}
