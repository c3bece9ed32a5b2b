import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Figures of one benchmark run, printed as an aligned table (rows of label and value, then
/// any column tables) and then as one line of JSON with sorted keys.
struct BenchmarkReport {
    let benchmark: String
    private(set) var rows: [(String, String)] = []
    private(set) var tables: [TextTable] = []
    private(set) var json: [String: Any] = [:]

    init(_ benchmark: String) {
        self.benchmark = benchmark
        json["benchmark"] = benchmark
        add("build", Self.buildConfiguration, key: "build")
    }

    /// The configuration this binary was compiled in: figures of a debug build are not the
    /// release figures docs/benchmarks.md quotes, and every report says which it is.
    static var buildConfiguration: String {
        #if DEBUG
        return "debug"
        #else
        return "release"
        #endif
    }

    /// Adds a row; `key` (snake_case) also goes into the JSON with `value`.
    mutating func add(_ label: String, _ text: String, key: String? = nil, value: Any? = nil) {
        rows.append((label, text))
        if let key { json[key] = value ?? text }
    }

    /// Adds `value` to the JSON only.
    mutating func record(_ key: String, _ value: Any) {
        json[key] = value
    }

    /// Adds a column table, printed after the rows.
    mutating func add(_ table: TextTable) {
        tables.append(table)
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
        for (label, text) in rows {
            Swift.print(label.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + text)
        }
        for table in tables { Swift.print(table.rendered) }
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        Swift.print(String(decoding: data, as: UTF8.self))
    }

    /// The peak resident set size of this process (`ru_maxrss`), in KiB.
    static func peakResidentKiB() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss)
    }

    /// The peak resident set size of this process, in MiB.
    static func peakResidentMiB() -> Double {
        Double(peakResidentKiB()) / 1024
    }
}

/// A table of columns: the first left-aligned, the others right-aligned, each as wide as its
/// widest cell.
struct TextTable {
    let header: [String]
    private(set) var rows: [[String]] = []

    init(_ header: [String]) {
        self.header = header
    }

    mutating func add(_ row: [String]) {
        rows.append(row)
    }

    var rendered: String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: max(0, widths[column] - cell.count))
                return column == 0 ? cell + padding : padding + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }

    /// The duration in milliseconds.
    var milliseconds: Double { seconds * 1_000 }
}

/// The CPU time this process has used so far, on all its threads: unlike wall time, it does
/// not grow when other processes compete for the machine. It includes system time, so the
/// kernel's work inside this process's system calls (netlink) counts.
func processCPUTime() -> Duration {
    var spec = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &spec)
    return .seconds(spec.tv_sec) + .nanoseconds(spec.tv_nsec)
}

/// The CPU time (user + system) of this process's children that have been waited for.
func childrenCPUTime() -> Duration {
    var usage = rusage()
    getrusage(RUSAGE_CHILDREN.rawValue, &usage)
    func duration(_ time: timeval) -> Duration { .seconds(time.tv_sec) + .microseconds(time.tv_usec) }
    return duration(usage.ru_utime) + duration(usage.ru_stime)
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

/// Times `body` on the continuous clock and in CPU time of the whole process.
func measureBoth<T>(_ body: () async throws -> T) async rethrows -> (result: T, wall: Duration, cpu: Duration) {
    let clock = ContinuousClock()
    let cpuStart = processCPUTime()
    let start = clock.now
    let result = try await body()
    let wall = clock.now - start
    return (result, wall, processCPUTime() - cpuStart)
}

/// The median of `values` (the mean of the middle two for an even count); NaN when empty.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// The benchmark could not measure what it set out to (a failed operation, a wrong count).
struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
