import ArgumentParser
import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import Reconciler
import Store

/// `meshward-bench observe`: one node's share of a pass with many peers: observe its kernel
/// (a dump) and diff it against the Store's channels.
///
/// The spec is one hub and `--peers` peers with a flow between the hub and each of them, so
/// the hub has 2 × peers channels: an outbound policy pinning the SPI for each channel to a
/// peer and an inbound policy for each channel from one. Those policies are installed as
/// Meshward writes them; the Store's records (one active generation per channel) are built in
/// memory. Each pass times `observe()` and then `FleetPlanner().plan(_:)` on a planning input
/// holding the intent, those records and the hub's observation alone (the peers are known but
/// not observed, so their channels are planned as waiting on them and nothing is sent).
///
/// Backends: `NetlinkKernel` in a fresh network namespace (policies only: this machine's
/// kernel has no ESP, so SAs cannot be installed), the simulated kernel with the same
/// policies, and the simulated kernel with the SAs as well (what a node really holds).
struct ObserveBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "observe",
        abstract: "Time one node's observe + diff with many peers: netlink (needs root) and the simulated kernel."
    )

    @Option(help: "Peers of the observed node; it gets 2 policies per peer.")
    var peers = 2_000

    @Option(help: "Timed passes per backend; the mean and the median are reported.")
    var passes = 20

    @Flag(help: "Skip the netlink backend (no root, or no network namespaces).")
    var skipNetlink = false

    @Option(name: .customLong("ip"), help: "The iproute2 binary (to create and delete the namespace).")
    var ipPath = "/usr/sbin/ip"

    /// The target for one node's observe + diff, in milliseconds.
    static let targetMilliseconds = 50.0

    func validate() throws {
        guard peers >= 1, peers <= 60_000 else { throw ValidationError("--peers must be 1...60000.") }
        guard passes >= 1 else { throw ValidationError("--passes must be at least 1.") }
    }

    func run() async throws {
        let written = try FleetGenerator.write(FleetGenerator.hubAndSpoke(peers: peers))
        defer { try? FileManager.default.removeItem(at: written.directory) }
        let loaded = SpecLoader().load(paths: [written.file])
        guard let intent = loaded.intent else {
            throw BenchFailure("generated spec invalid: \(loaded.diagnostics.prefix(2))")
        }
        let now = Date()
        let fleet = ConvergedFleet(intent: intent, at: now)
        let hub = fleet.observations["hub"] ?? NodeObservation()
        let reqid = Reqid(intent.reqid)
        let template = PlanningInput(
            intent: intent, channels: fleet.records, observations: [:], knownNodes: Set(intent.nodes.map(\.name)),
            reqid: reqid, now: now)
        let logger = Logger(label: "meshward.bench", factory: { _ in SwiftLogNoOpLogHandler() })

        var results: [Result] = []
        if !skipNetlink {
            let namespace = try BenchNamespace(ipPath: ipPath)
            defer { namespace.delete() }
            let kernel = try NetlinkKernel(
                node: "hub", endpoint: .namespace(namespace.name), reqid: reqid, logger: logger)
            _ = try await kernel.observe()
            try requireApplied(try await kernel.apply(hub.policies.map { .addPolicy($0) }))
            results.append(
                try await time("netlink (policies)", kernel: kernel, expecting: (0, hub.policies.count), template))
        }
        for withSAs in [false, true] {
            let simulated = SimulatedFleet()
            let address = intent.node(named: "hub")?.addresses ?? []
            simulated.withState { $0.addNode("hub", addresses: address) }
            let kernel = simulated.kernel(for: "hub", reqid: reqid)
            let sas = withSAs ? hub.securityAssociations : []
            try requireApplied(try await kernel.apply(sas.map { .addSA($0) } + hub.policies.map { .addPolicy($0) }))
            let name = withSAs ? "simulated (SAs + policies)" : "simulated (policies)"
            results.append(
                try await time(name, kernel: kernel, expecting: (sas.count, hub.policies.count), template))
        }

        var report = BenchmarkReport("observe")
        report.add("observed node", "hub with \(peers) peers", key: "peers", value: peers)
        report.add("channels touching it", "\(intent.channels.count)", key: "channels", value: intent.channels.count)
        report.add("passes per backend", "\(passes)", key: "passes", value: passes)
        report.add(
            "target", String(format: "observe + diff < %.0f ms", Self.targetMilliseconds), key: "target_ms",
            value: Self.targetMilliseconds)
        var table = TextTable([
            "backend", "SAs", "policies", "observe ms", "observe cpu ms", "diff ms", "diff cpu ms", "total ms",
            "total cpu ms", "median total ms", "target",
        ])
        for result in results {
            table.add([
                result.backend, "\(result.sas)", "\(result.policies)", format(result.observe),
                format(result.observeCPU),
                format(result.diff), format(result.diffCPU), format(result.total), format(result.totalCPU),
                format(result.medianTotal), result.total < Self.targetMilliseconds ? "met" : "missed",
            ])
        }
        report.add(table)
        report.record(
            "backends",
            results.map { result -> [String: Any] in
                [
                    "backend": result.backend, "sas": result.sas, "policies": result.policies,
                    "observe_ms": result.observe, "observe_cpu_ms": result.observeCPU, "diff_ms": result.diff,
                    "diff_cpu_ms": result.diffCPU, "total_ms": result.total, "total_cpu_ms": result.totalCPU,
                    "median_total_ms": result.medianTotal, "target_met": result.total < Self.targetMilliseconds,
                ]
            })
        report.peakMemory()
        try report.print()
    }

    /// One backend's means over the passes, in milliseconds.
    struct Result {
        var backend: String
        var sas: Int
        var policies: Int
        var observe = 0.0
        var observeCPU = 0.0
        var diff = 0.0
        var diffCPU = 0.0
        var medianTotal = 0.0
        var total: Double { observe + diff }
        var totalCPU: Double { observeCPU + diffCPU }
    }

    private func time(
        _ backend: String, kernel: any NodeKernel, expecting: (sas: Int, policies: Int), _ template: PlanningInput
    ) async throws -> Result {
        let planner = FleetPlanner()
        var result = Result(backend: backend, sas: expecting.sas, policies: expecting.policies)
        var totals: [Double] = []
        // One untimed pass warms the caches and checks what the timed ones will see.
        for pass in 0...passes {
            let observed = try await measureBoth { try await kernel.observe() }
            guard observed.result.policies.count == expecting.policies,
                observed.result.securityAssociations.count == expecting.sas
            else {
                throw BenchFailure(
                    "\(backend) observed \(observed.result.securityAssociations.count) SAs and "
                        + "\(observed.result.policies.count) policies, expected \(expecting.sas) and \(expecting.policies)"
                )
            }
            var input = template
            input.observations = ["hub": observed.result]
            let diffed = await measureBoth { planner.plan(input) }
            guard diffed.result.operationCount == 0, diffed.result.generationRequests.isEmpty else {
                throw BenchFailure(
                    "\(backend): the converged hub planned \(diffed.result.operationCount) operations: a defect")
            }
            guard pass > 0 else { continue }
            result.observe += observed.wall.milliseconds / Double(passes)
            result.observeCPU += observed.cpu.milliseconds / Double(passes)
            result.diff += diffed.wall.milliseconds / Double(passes)
            result.diffCPU += diffed.cpu.milliseconds / Double(passes)
            totals.append(observed.wall.milliseconds + diffed.wall.milliseconds)
        }
        result.medianTotal = median(totals)
        return result
    }

    private func format(_ milliseconds: Double) -> String { String(format: "%.2f", milliseconds) }
}
