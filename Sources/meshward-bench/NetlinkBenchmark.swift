import ArgumentParser
import Foundation
import Kernel
import Logging
import MeshwardCore

/// `meshward-bench netlink`: installs, dumps and deletes policies (or, with `--objects sas`,
/// ESP SAs, which need a kernel with ESP) through `NetlinkKernel` and through iproute2
/// (`ip -batch`, and one `ip` process per operation on a sample), each in a fresh network
/// namespace of its own, and prints the rates.
struct NetlinkBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netlink",
        abstract: "Policy or SA install/dump/delete rates: the netlink backend against iproute2 (needs root)."
    )

    enum Objects: String, ExpressibleByArgument, Codable {
        case policies, sas
    }

    @Option(help: "What to install: policies, or sas (ESP SAs with aes-gcm-256; needs ESP in the kernel).")
    var objects: Objects = .policies

    @Option(help: "Policies (or SAs) to install, dump and delete per method.")
    var policies = 20_000

    @Option(help: "Operations timed for one `ip` process per operation (extrapolated).")
    var sample = 1_000

    @Option(help: "Repetitions of the backend and `ip -batch` runs; the median is reported.")
    var runs = 3

    @Option(name: .customLong("ip"), help: "The iproute2 binary.")
    var ipPath = "/usr/sbin/ip"

    func validate() throws {
        guard policies > 0, policies <= 120_000 else { throw ValidationError("--policies must be 1...120000 (the test range 198.18.0.0/15).") }
        guard sample > 0, runs > 0 else { throw ValidationError("--sample and --runs must be positive.") }
    }

    func run() async throws {
        let logger = Logger(label: "meshward.bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let set: [Item] = objects == .sas
            ? Self.associations(count: policies).map(Item.sa) : Self.policies(count: policies).map(Item.policy)
        let sampleSet = Array(set.prefix(sample))
        var backend: [Phase: [Double]] = [:]
        var batch: [Phase: [Double]] = [:]
        for _ in 0..<runs {
            for (phase, seconds) in try await timeBackend(set, logger: logger) { backend[phase, default: []].append(seconds) }
            for (phase, seconds) in try timeIPBatch(set) { batch[phase, default: []].append(seconds) }
        }
        let perProcess = try timeIPPerOperation(sampleSet)

        let rows: [Row] = Phase.allCases.map { phase in
            Row(phase: phase,
                backend: Double(policies) / median(backend[phase] ?? []),
                ipBatch: Double(policies) / median(batch[phase] ?? []),
                ipPerOperation: phase == .dump ? nil : perProcess[phase].map { Double(sample) / $0 })
        }
        printTable(rows)
        try printJSON(rows)
    }

    enum Phase: String, CaseIterable, Codable {
        case install, dump, delete
    }

    /// One object of the measured set.
    enum Item {
        case policy(SecurityPolicy)
        case sa(SecurityAssociation)

        var add: KernelOperation {
            switch self {
            case .policy(let policy): .addPolicy(policy)
            case .sa(let sa): .addSA(sa)
            }
        }

        var delete: KernelOperation {
            switch self {
            case .policy(let policy): .deletePolicy(policy.identifier)
            case .sa(let sa): .deleteSA(sa.identifier)
            }
        }

        var addLine: String {
            switch self {
            case .policy(let policy): NetlinkBenchmark.ipLine(add: policy)
            case .sa(let sa): NetlinkBenchmark.ipLine(add: sa)
            }
        }

        var deleteLine: String {
            switch self {
            case .policy(let policy): NetlinkBenchmark.ipLine(delete: policy)
            case .sa(let sa): "xfrm state delete src \(sa.source) dst \(sa.destination) proto esp spi \(sa.spi.hex)"
            }
        }
    }

    struct Row: Codable {
        var phase: Phase
        /// Objects (policies or SAs) per second.
        var backend: Double
        var ipBatch: Double
        var ipPerOperation: Double?
        var backendOverBatch: Double { backend / ipBatch }
    }

    static func policies(count: Int) -> [SecurityPolicy] {
        let local = IPAddress(bytes: [198, 18, 0, 1]) ?? .unspecified(.ipv4)
        return (0..<count).map { index in
            let host = index + 2
            let remote = IPAddress(bytes: [198, UInt8(18 + host / 65536), UInt8(host / 256 % 256), UInt8(host % 256)])
                ?? .unspecified(.ipv4)
            return SecurityPolicy(
                selector: PolicySelector(source: IPPrefix(host: local), destination: IPPrefix(host: remote)),
                direction: .outbound,
                template: PolicyTemplate(family: .ipv4, spi: SPI(UInt32(0x1000 + index)), reqid: .meshwardDefault,
                                         isOptional: false))
        }
    }

    /// `count` outbound ESP SAs (aes-gcm-256, ESN, replay window 128) from 198.18.0.1, each to
    /// its own address of 198.18.0.0/15, with a fixed key: the key's content does not change
    /// the cost of an install.
    static func associations(count: Int) -> [SecurityAssociation] {
        let local = IPAddress(bytes: [198, 18, 0, 1]) ?? .unspecified(.ipv4)
        let key = KeyMaterial(bytes: (0..<Cipher.aesGCM256.keyLength).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) })
        return (0..<count).map { index in
            let host = index + 2
            let remote = IPAddress(bytes: [198, UInt8(18 + host / 65536), UInt8(host / 256 % 256), UInt8(host % 256)])
                ?? .unspecified(.ipv4)
            return SecurityAssociation(
                source: local, destination: remote, spi: SPI(UInt32(0x1000 + index)), reqid: .meshwardDefault,
                cipher: .aesGCM256, key: .material(key))
        }
    }

    /// The iproute2 line that installs `sa` as the backend does (see the behaviour suite's fixture).
    static func ipLine(add sa: SecurityAssociation) -> String {
        let key = sa.key.material?.bytes ?? []
        let hex = "0x" + key.map { String(format: "%02x", $0) }.joined()
        return "xfrm state add src \(sa.source) dst \(sa.destination) proto esp spi \(sa.spi.hex) "
            + "reqid \(sa.reqid.rawValue) mode transport aead \(sa.cipher.kernelEncryptionName) \(hex) \(sa.cipher.icvBits) "
            + "replay-window \(sa.replayWindow)" + (sa.extendedSequenceNumbers ? " flag esn" : "")
    }

    static func ipLine(add policy: SecurityPolicy) -> String {
        "xfrm policy add src \(policy.selector.source) dst \(policy.selector.destination) dir out priority \(policy.priority) "
            + "tmpl proto esp spi \(policy.template.spi?.hex ?? "0") reqid \(policy.template.reqid.rawValue) mode transport"
    }

    static func ipLine(delete policy: SecurityPolicy) -> String {
        "xfrm policy delete src \(policy.selector.source) dst \(policy.selector.destination) dir out"
    }

    private func timeBackend(_ set: [Item], logger: Logger) async throws -> [Phase: Double] {
        let namespace = try BenchNamespace(ipPath: ipPath)
        defer { namespace.delete() }
        let kernel = try NetlinkKernel(node: "bench", endpoint: .namespace(namespace.name), reqid: .meshwardDefault, logger: logger)
        _ = try await kernel.observe()
        var times: [Phase: Double] = [:]
        var start = ContinuousClock.now
        let added = try await kernel.apply(set.map(\.add))
        times[.install] = seconds(since: start)
        try check(added)
        start = ContinuousClock.now
        let observed = try await kernel.observe()
        times[.dump] = seconds(since: start)
        let seen = objects == .sas ? observed.securityAssociations.count : observed.policies.count
        guard seen == set.count else {
            throw BenchFailure("the backend observed \(seen) \(objects.rawValue), expected \(set.count)")
        }
        start = ContinuousClock.now
        let deleted = try await kernel.apply(set.map(\.delete))
        times[.delete] = seconds(since: start)
        try check(deleted)
        return times
    }

    private func check(_ results: [OperationResult]) throws {
        if let failure = results.first(where: { !$0.outcome.isApplied }) {
            throw BenchFailure("\(failure.operation): \(failure.outcome)")
        }
    }

    private func timeIPBatch(_ set: [Item]) throws -> [Phase: Double] {
        let namespace = try BenchNamespace(ipPath: ipPath)
        defer { namespace.delete() }
        let addFile = try namespace.writeBatch(set.map(\.addLine))
        let deleteFile = try namespace.writeBatch(set.map(\.deleteLine))
        defer {
            try? FileManager.default.removeItem(atPath: addFile)
            try? FileManager.default.removeItem(atPath: deleteFile)
        }
        var times: [Phase: Double] = [:]
        var start = ContinuousClock.now
        try namespace.ip(["-batch", addFile])
        times[.install] = seconds(since: start)
        start = ContinuousClock.now
        let listing = try namespace.ip(["xfrm", objects == .sas ? "state" : "policy"], captureOutput: true)
        times[.dump] = seconds(since: start)
        let count = listing.components(separatedBy: objects == .sas ? "\n\tproto esp spi" : "\n\tdir out").count - 1
        guard count == set.count else { throw BenchFailure("ip listed \(count) \(objects.rawValue), expected \(set.count)") }
        start = ContinuousClock.now
        try namespace.ip(["-batch", deleteFile])
        times[.delete] = seconds(since: start)
        return times
    }

    private func timeIPPerOperation(_ set: [Item]) throws -> [Phase: Double] {
        let namespace = try BenchNamespace(ipPath: ipPath)
        defer { namespace.delete() }
        var times: [Phase: Double] = [:]
        var start = ContinuousClock.now
        for item in set { try namespace.ip(item.addLine.split(separator: " ").map(String.init)) }
        times[.install] = seconds(since: start)
        start = ContinuousClock.now
        for item in set { try namespace.ip(item.deleteLine.split(separator: " ").map(String.init)) }
        times[.delete] = seconds(since: start)
        return times
    }

    private func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    private func printTable(_ rows: [Row]) {
        func rate(_ value: Double?) -> String {
            guard let value else { return "-" }
            return String(format: "%.0f/s", value)
        }
        func pad(_ text: String, _ width: Int) -> String {
            String(repeating: " ", count: max(0, width - text.count)) + text
        }
        let what = objects == .sas ? "ESP SAs (aes-gcm-256)" : "policies"
        print("netlink benchmark: \(policies) IPv4 \(what) per method, median of \(runs) runs; ip per operation on \(sample)")
        print(pad("phase", 8) + pad("backend", 14) + pad("ip -batch", 14) + pad("ip per op", 14) + pad("backend/batch", 16))
        for row in rows {
            print(pad(row.phase.rawValue, 8) + pad(rate(row.backend), 14) + pad(rate(row.ipBatch), 14)
                  + pad(rate(row.ipPerOperation), 14) + pad(String(format: "%.2fx", row.backendOverBatch), 16))
        }
    }

    private func printJSON(_ rows: [Row]) throws {
        struct Report: Codable {
            var benchmark = "netlink"
            var objects: Objects
            var policies: Int
            var runs: Int
            var sample: Int
            var unit: String
            var phases: [Entry]
        }
        struct Entry: Codable {
            var phase: Phase
            var backend: Double
            var ipBatch: Double
            var ipPerOperation: Double?
            var backendOverBatch: Double
        }
        let report = Report(objects: objects, policies: policies, runs: runs, sample: sample,
                            unit: "\(objects == .sas ? "SAs" : "policies") per second", phases: rows.map {
            Entry(phase: $0.phase, backend: ($0.backend).rounded(), ipBatch: $0.ipBatch.rounded(),
                  ipPerOperation: $0.ipPerOperation?.rounded(), backendOverBatch: ($0.backendOverBatch * 100).rounded() / 100)
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }
}

/// The benchmark could not measure what it set out to (a failed operation, a wrong count).
struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A network namespace made for one measurement (`mwtest-bench-<random>`), deleted afterwards.
struct BenchNamespace {
    let name: String
    let ipPath: String

    init(ipPath: String) throws {
        self.ipPath = ipPath
        self.name = "mwtest-bench-\(UInt32.random(in: 0...UInt32.max))"
        try Self.run(ipPath, ["netns", "add", name], captureOutput: false)
    }

    func delete() {
        _ = try? Self.run(ipPath, ["netns", "del", name], captureOutput: false)
    }

    @discardableResult
    func ip(_ arguments: [String], captureOutput: Bool = false) throws -> String {
        try Self.run(ipPath, ["-n", name] + arguments, captureOutput: captureOutput)
    }

    func writeBatch(_ lines: [String]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString).batch").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], captureOutput: Bool) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = captureOutput ? output : FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let data = captureOutput ? output.fileHandleForReading.readDataToEndOfFile() : Data()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchFailure("\(executable) \(arguments.prefix(6).joined(separator: " ")) exited \(process.terminationStatus): "
                               + String(decoding: errorData.prefix(300), as: UTF8.self))
        }
        return String(decoding: data, as: UTF8.self)
    }
}
