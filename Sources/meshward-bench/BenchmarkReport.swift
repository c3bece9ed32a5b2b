import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Figures of one benchmark run, printed as an aligned table and then as one line of JSON.
struct BenchmarkReport {
    let benchmark: String
    private(set) var rows: [(String, String)] = []
    private(set) var json: [String: Any] = [:]

    init(_ benchmark: String) {
        self.benchmark = benchmark
        json["benchmark"] = benchmark
    }

    /// Adds a row; `key` (snake_case) also goes into the JSON with `value`.
    mutating func add(_ label: String, _ text: String, key: String? = nil, value: Any? = nil) {
        rows.append((label, text))
        if let key { json[key] = value ?? text }
    }

    mutating func seconds(_ label: String, _ duration: Duration, key: String) {
        add(label, String(format: "%.3f s", duration.seconds), key: key, value: duration.seconds)
    }

    /// Adds the process's peak resident memory so far.
    mutating func peakMemory(key: String = "peak_rss_mib") {
        let mib = Self.peakResidentMiB()
        add("peak memory (ru_maxrss)", String(format: "%.1f MiB", mib), key: key, value: mib)
    }

    func print() throws {
        let width = rows.map(\.0.count).max() ?? 0
        Swift.print("== \(benchmark)")
        for (label, text) in rows { Swift.print(label.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + text) }
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        Swift.print(String(decoding: data, as: UTF8.self))
    }

    /// The peak resident set size of this process, in MiB.
    static func peakResidentMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The CPU time this process has used so far, on all its threads: unlike wall time, it does
/// not grow when other processes compete for the machine.
func processCPUTime() -> Duration {
    var spec = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &spec)
    return .seconds(spec.tv_sec) + .nanoseconds(spec.tv_nsec)
}

/// Times `body` in CPU time of the whole process (all threads).
func measureCPU<T>(_ body: () throws -> T) rethrows -> (T, Duration) {
    let start = processCPUTime()
    let result = try body()
    return (result, processCPUTime() - start)
}

/// Times `body` on the continuous clock.
func measure<T>(_ body: () async throws -> T) async rethrows -> (T, Duration) {
    let clock = ContinuousClock()
    let start = clock.now
    let result = try await body()
    return (result, clock.now - start)
}
