import ArgumentParser
import DesiredState
import Foundation

/// `meshward-bench compile`: times loading, validating and compiling a large generated spec.
///
/// The spec has `--nodes` nodes in four tiers and one flow from every node to every node, so it
/// compiles to nodes × (nodes − 1) channels per address family. It is written to a temporary
/// directory (removed afterwards) and loaded through `SpecLoader`, exactly as `validate` does.
struct CompileBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile",
        abstract: "Time load + validate + compile of a generated full-mesh spec."
    )

    @Option(help: "The number of nodes.")
    var nodes = 1000

    @Flag(help: "Give every node an IPv6 address too (doubles the channels).")
    var dualStack = false

    @Option(help: "How many times to load the spec; the fastest run is reported.")
    var runs = 1

    func validate() throws {
        guard nodes >= 2, nodes <= 60_000 else { throw ValidationError("--nodes must be between 2 and 60000.") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1.") }
    }

    func run() async throws {
        let text = FleetGenerator.fullMesh(nodes: nodes, dualStack: dualStack)
        let written = try FleetGenerator.write(text)
        defer { try? FileManager.default.removeItem(at: written.directory) }

        var best = Duration.seconds(1_000_000)
        var bestCPU = Duration.seconds(1_000_000)
        var channels = 0
        var revision = ""
        for _ in 0..<runs {
            let cpuStart = processCPUTime()
            let (result, elapsed) = await measure { SpecLoader().load(paths: [written.file]) }
            bestCPU = min(bestCPU, processCPUTime() - cpuStart)
            guard let intent = result.intent else {
                throw ValidationError("the generated spec is invalid: \(result.diagnostics.prefix(3))")
            }
            channels = intent.channels.count
            revision = intent.shortRevision
            best = min(best, elapsed)
        }
        let peakKiB = BenchmarkReport.peakResidentKiB()
        var report = BenchmarkReport("compile")
        report.add("nodes", "\(nodes)", key: "nodes", value: nodes)
        report.add("families", dualStack ? "ipv4+ipv6" : "ipv4", key: "dual_stack", value: dualStack)
        report.add("flows", "1 (all to all)", key: "flows", value: 1)
        report.add("spec bytes", "\(text.utf8.count)", key: "spec_bytes", value: text.utf8.count)
        report.add("channels", "\(channels)", key: "channels", value: channels)
        report.add("revision", revision)
        report.add("load+validate+compile", String(format: "%.3f s", best.seconds), key: "seconds", value: best.seconds)
        report.add(
            "cpu time (user+system)", String(format: "%.3f s", bestCPU.seconds), key: "cpu_seconds",
            value: bestCPU.seconds)
        report.add(
            "peak memory (ru_maxrss)", String(format: "%.1f MiB", Double(peakKiB) / 1024), key: "peak_rss_kib",
            value: peakKiB)
        report.record("runs", runs)
        try report.print()
    }
}
