import ArgumentParser
import DesiredState
import Foundation

/// `meshward-bench hostile-specs`: how long the loader takes to refuse each spec of the hostile
/// corpus (`Tests/DesiredStateTests/Fixtures/hostile/`: billion laughs, deep nesting, huge
/// scalars, malformed UTF-8 and the rest).
///
/// The loader's guards make every refusal cheap; this prints the slowest file, the median and
/// the total, in CPU time as well as wall time, so a guard that stops working shows as a figure
/// rather than as a test that fails only on a loaded machine.
struct HostileSpecBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hostile-specs",
        abstract: "Time refusing every spec of the hostile corpus."
    )

    @Option(help: "The corpus directory.")
    var corpus = "Tests/DesiredStateTests/Fixtures/hostile"

    @Option(help: "How many times to load each file; the fastest run of each is reported.")
    var runs = 3

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1.") }
    }

    func run() async throws {
        let root = URL(fileURLWithPath: corpus)
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: root.path).sorted()
        } catch {
            throw ValidationError("cannot read the corpus directory \(root.path): \(error.localizedDescription)")
        }
        guard !entries.isEmpty else { throw ValidationError("the corpus directory \(root.path) is empty") }

        var timings: [(file: String, wall: Duration, cpu: Duration)] = []
        for entry in entries {
            let path = root.appendingPathComponent(entry).path
            var bestWall = Duration.seconds(1_000_000)
            var bestCPU = Duration.seconds(1_000_000)
            for _ in 0..<runs {
                let measured = await measureBoth { SpecLoader().load(paths: [path]) }
                if measured.result.intent != nil {
                    throw ValidationError("\(path) compiled: the hostile corpus must hold refused specs only")
                }
                bestWall = min(bestWall, measured.wall)
                bestCPU = min(bestCPU, measured.cpu)
            }
            timings.append((entry, bestWall, bestCPU))
        }
        guard let slowest = timings.max(by: { $0.cpu < $1.cpu }) else { return }
        let totalWall = timings.reduce(Duration.zero) { $0 + $1.wall }
        let totalCPU = timings.reduce(Duration.zero) { $0 + $1.cpu }

        var report = BenchmarkReport("hostile-specs")
        report.add("files", "\(timings.count)", key: "files", value: timings.count)
        report.add(
            "slowest (cpu)", String(format: "%.4f s  %@", slowest.cpu.seconds, slowest.file),
            key: "slowest_cpu_seconds",
            value: slowest.cpu.seconds)
        report.record("slowest_file", slowest.file)
        report.add(
            "median (cpu)", String(format: "%.4f s", median(timings.map(\.cpu.seconds))), key: "median_cpu_seconds",
            value: median(timings.map(\.cpu.seconds)))
        report.add(
            "all files (wall)", String(format: "%.3f s", totalWall.seconds), key: "seconds", value: totalWall.seconds)
        report.add(
            "all files (cpu)", String(format: "%.3f s", totalCPU.seconds), key: "cpu_seconds", value: totalCPU.seconds)
        report.add(
            "peak memory (ru_maxrss)", String(format: "%.1f MiB", Double(BenchmarkReport.peakResidentKiB()) / 1024),
            key: "peak_rss_kib", value: BenchmarkReport.peakResidentKiB())
        report.record("runs", runs)
        try report.print()
    }
}
