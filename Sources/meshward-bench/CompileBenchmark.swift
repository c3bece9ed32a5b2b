import ArgumentParser
import DesiredState
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("meshward-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("fleet.yaml").path
        let text = specText()
        try text.write(toFile: path, atomically: true, encoding: .utf8)

        var best = Duration.seconds(1_000_000)
        var bestCPU = Double.infinity
        var channels = 0
        var revision = ""
        for _ in 0..<runs {
            let clock = ContinuousClock()
            let cpuStart = Self.cpuSeconds()
            let start = clock.now
            let result = SpecLoader().load(paths: [path])
            let elapsed = clock.now - start
            bestCPU = min(bestCPU, Self.cpuSeconds() - cpuStart)
            guard let intent = result.intent else {
                throw ValidationError("the generated spec is invalid: \(result.diagnostics.prefix(3))")
            }
            channels = intent.channels.count
            revision = intent.shortRevision
            best = min(best, elapsed)
        }
        var usage = rusage()
        #if canImport(Darwin)
        getrusage(RUSAGE_SELF, &usage)
        let peakKiB = Int(usage.ru_maxrss) / 1024
        #else
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peakKiB = Int(usage.ru_maxrss)
        #endif
        let seconds = Double(best.components.seconds) + Double(best.components.attoseconds) / 1e18
        let rows: [(String, String)] = [
            ("nodes", "\(nodes)"), ("families", dualStack ? "ipv4+ipv6" : "ipv4"), ("flows", "1 (all to all)"),
            ("spec bytes", "\(text.utf8.count)"), ("channels", "\(channels)"), ("revision", revision),
            ("load+validate+compile", String(format: "%.3f s", seconds)),
            ("cpu time (user+system)", String(format: "%.3f s", bestCPU)),
            ("peak memory (ru_maxrss)", String(format: "%.1f MiB", Double(peakKiB) / 1024)),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        for (name, value) in rows { print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value) }
        let json: [String: Any] = [
            "benchmark": "compile", "nodes": nodes, "dual_stack": dualStack, "flows": 1, "channels": channels,
            "spec_bytes": text.utf8.count, "seconds": seconds, "cpu_seconds": bestCPU, "peak_rss_kib": peakKiB, "runs": runs,
        ]
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// User plus system CPU time of this process so far, in seconds. On a busy machine the wall
    /// time includes waiting for a core; the CPU time does not.
    private static func cpuSeconds() -> Double {
        var usage = rusage()
        #if canImport(Darwin)
        getrusage(RUSAGE_SELF, &usage)
        #else
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #endif
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// The generated spec: nodes in four tiers, each with an address from 198.18.0.0/15
    /// (and 2001:db8::/32), and one flow selecting every node on both sides.
    private func specText() -> String {
        let tiers = ["web", "app", "db", "cache"]
        var text = "version: 1\ncluster: bench\ndefaults:\n  cipher: aes-gcm-256\n  rekey: { every: 24h }\nnodes:\n"
        for index in 0..<nodes {
            let v4 = "198.\(18 + index / 65_536).\((index / 256) % 256).\(index % 256)"
            let v6 = "\"2001:db8::\(String(index + 1, radix: 16))\""
            let addresses = dualStack ? "\(v4), \(v6)" : v4
            text += "  - name: node-\(index)\n    addresses: [\(addresses)]\n"
                + "    labels: { tier: \(tiers[index % tiers.count]) }\n"
        }
        text += "flows:\n  - name: full-mesh\n    from: {}\n    to: {}\n"
        return text
    }
}
