import ArgumentParser
import Foundation
import Kernel
import Logging
import MeshwardCore

/// `meshward-bench netlink`: installs, dumps and deletes policies (or, with `--objects sas`,
/// ESP SAs, which need a kernel with ESP) through `NetlinkKernel` and
/// through iproute2 (`ip -batch`, and one `ip` process per operation on a sample), each in a
/// fresh network namespace of its own, and prints the rates.
struct NetlinkBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netlink",
        abstract: "Policy install/dump/delete rates: the netlink backend against iproute2 (needs root)."
    )

    @Option(help: "Policies to install, dump and delete per method.")
    var policies = 20_000

    /// What the benchmark installs.
    enum Objects: String, ExpressibleByArgument, Codable {
        case policies, sas
    }

    @Option(help: "What to install: policies, or sas (ESP SAs with aes-gcm-256; needs ESP in the kernel).")
    var objects: Objects = .policies

    @Option(help: "Operations timed for one `ip` process per operation (extrapolated).")
    var sample = 1_000

    @Option(help: "Repetitions of the backend and `ip -batch` runs; the median is reported.")
    var runs = 3

    @Option(name: .customLong("ip"), help: "The iproute2 binary.")
    var ipPath = "/usr/sbin/ip"

    func validate() throws {
        guard policies > 0, policies <= 120_000 else {
            throw ValidationError("--policies must be 1...120000 (the test range 198.18.0.0/15).")
        }
        guard sample > 0, runs > 0 else { throw ValidationError("--sample and --runs must be positive.") }
    }

    func run() async throws {
        let logger = Logger(label: "meshward.bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let set: [Item] =
            objects == .sas
            ? Self.associations(count: policies).map(Item.sa) : Self.policies(count: policies).map(Item.policy)
        let sampleSet = Array(set.prefix(sample))
        var backend: [Phase: [Timing]] = [:]
        var batch: [Phase: [Timing]] = [:]
        for _ in 0..<runs {
            for (phase, timing) in try await timeBackend(set, logger: logger) {
                backend[phase, default: []].append(timing)
            }
            for (phase, timing) in try timeIPBatch(set) { batch[phase, default: []].append(timing) }
        }
        let perProcess = try timeIPPerOperation(sampleSet)

        let count = Double(policies)
        let rows: [Row] = Phase.allCases.map { phase in
            Row(
                phase: phase,
                backend: count / median(backend[phase]?.map(\.wall) ?? []),
                ipBatch: count / median(batch[phase]?.map(\.wall) ?? []),
                ipPerOperation: phase == .dump ? nil : perProcess[phase].map { Double(sample) / $0 },
                backendCPU: count / median(backend[phase]?.map(\.cpu) ?? []),
                ipBatchCPU: count / median(batch[phase]?.map(\.cpu) ?? []))
        }
        try printReport(rows)
    }

    enum Phase: String, CaseIterable, Codable {
        case install, dump, delete
    }

    /// One phase of one method: wall seconds, and CPU seconds (this process's for the backend,
    /// the `ip` child's for iproute2; both include the kernel's work in their system calls).
    struct Timing {
        var wall: Double
        var cpu: Double
    }

    struct Row {
        var phase: Phase
        /// Policies per second of wall time.
        var backend: Double
        var ipBatch: Double
        var ipPerOperation: Double?
        /// Policies per second of CPU time.
        var backendCPU: Double
        var ipBatchCPU: Double
        var backendOverBatch: Double { backend / ipBatch }
        var backendOverBatchCPU: Double { backendCPU / ipBatchCPU }
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

    /// `count` outbound ESP SAs (aes-gcm-256, ESN, replay window 128) from 198.18.0.1, each to
    /// its own address of 198.18.0.0/15, with a fixed key: the key's content does not change
    /// the cost of an install.
    static func associations(count: Int) -> [SecurityAssociation] {
        let local = IPAddress(bytes: [198, 18, 0, 1]) ?? .unspecified(.ipv4)
        let key = KeyMaterial(
            bytes: (0..<Cipher.aesGCM256.keyLength).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) })
        return (0..<count).map { index in
            let host = index + 2
            let remote =
                IPAddress(bytes: [198, UInt8(18 + host / 65536), UInt8(host / 256 % 256), UInt8(host % 256)])
                ?? .unspecified(.ipv4)
            return SecurityAssociation(
                source: local, destination: remote, spi: SPI(UInt32(0x1000 + index)), reqid: .meshwardDefault,
                cipher: .aesGCM256, key: .material(key))
        }
    }

    /// The iproute2 line that installs `sa` as the backend does.
    static func ipLine(add sa: SecurityAssociation) -> String {
        let key = sa.key.material?.bytes ?? []
        let hex = "0x" + key.map { String(format: "%02x", $0) }.joined()
        return "xfrm state add src \(sa.source) dst \(sa.destination) proto esp spi \(sa.spi.hex) "
            + "reqid \(sa.reqid.rawValue) mode transport aead \(sa.cipher.kernelEncryptionName) \(hex) "
            + "\(sa.cipher.icvBits) replay-window \(sa.replayWindow)" + (sa.extendedSequenceNumbers ? " flag esn" : "")
    }

    /// Outbound policies from 198.18.0.1 to hosts 198.18.0.2 ..., each pinning its own SPI.
    static func policies(count: Int) -> [SecurityPolicy] {
        let local = FleetGenerator.hostAddress(1)
        return (0..<count).map { index in
            SecurityPolicy(
                selector: PolicySelector(
                    source: IPPrefix(host: local), destination: IPPrefix(host: FleetGenerator.hostAddress(index + 2))),
                direction: .outbound,
                template: PolicyTemplate(
                    family: .ipv4, spi: SPI(UInt32(0x1000 + index)), reqid: .meshwardDefault, isOptional: false))
        }
    }

    static func ipLine(add policy: SecurityPolicy) -> String {
        "xfrm policy add src \(policy.selector.source) dst \(policy.selector.destination) dir out priority \(policy.priority) "
            + "tmpl proto esp spi \(policy.template.spi?.hex ?? "0") reqid \(policy.template.reqid.rawValue) mode transport"
    }

    static func ipLine(delete policy: SecurityPolicy) -> String {
        "xfrm policy delete src \(policy.selector.source) dst \(policy.selector.destination) dir out"
    }

    private func timeBackend(_ set: [Item], logger: Logger) async throws -> [Phase: Timing] {
        let namespace = try BenchNamespace(ipPath: ipPath)
        defer { namespace.delete() }
        let kernel = try NetlinkKernel(
            node: "bench", endpoint: .namespace(namespace.name), reqid: .meshwardDefault, logger: logger)
        _ = try await kernel.observe()
        var times: [Phase: Timing] = [:]
        let added = try await measureBoth { try await kernel.apply(set.map(\.add)) }
        times[.install] = Timing(wall: added.wall.seconds, cpu: added.cpu.seconds)
        try requireApplied(added.result)
        let observed = try await measureBoth { try await kernel.observe() }
        times[.dump] = Timing(wall: observed.wall.seconds, cpu: observed.cpu.seconds)
        let seen = objects == .sas ? observed.result.securityAssociations.count : observed.result.policies.count
        guard seen == set.count else {
            throw BenchFailure("the backend observed \(seen) \(objects.rawValue), expected \(set.count)")
        }
        let deleted = try await measureBoth { try await kernel.apply(set.map(\.delete)) }
        times[.delete] = Timing(wall: deleted.wall.seconds, cpu: deleted.cpu.seconds)
        try requireApplied(deleted.result)
        return times
    }

    private func timeIPBatch(_ set: [Item]) throws -> [Phase: Timing] {
        let namespace = try BenchNamespace(ipPath: ipPath)
        defer { namespace.delete() }
        let addFile = try namespace.writeBatch(set.map(\.addLine))
        let deleteFile = try namespace.writeBatch(set.map(\.deleteLine))
        defer {
            try? FileManager.default.removeItem(atPath: addFile)
            try? FileManager.default.removeItem(atPath: deleteFile)
        }
        /// Runs `body` (one `ip` process) and times it on the clock and in the child's CPU time.
        func timed<T>(_ body: () throws -> T) rethrows -> (T, Timing) {
            let clock = ContinuousClock()
            let cpuStart = childrenCPUTime()
            let start = clock.now
            let result = try body()
            let wall = clock.now - start
            return (result, Timing(wall: wall.seconds, cpu: (childrenCPUTime() - cpuStart).seconds))
        }
        var times: [Phase: Timing] = [:]
        (_, times[.install]) = try timed { try namespace.ip(["-batch", addFile]) }
        let listing: String
        (listing, times[.dump]) = try timed {
            try namespace.ip(["xfrm", objects == .sas ? "state" : "policy"], captureOutput: true)
        }
        let count = listing.components(separatedBy: objects == .sas ? "\n\tproto esp spi" : "\n\tdir out").count - 1
        guard count == set.count else {
            throw BenchFailure("ip listed \(count) \(objects.rawValue), expected \(set.count)")
        }
        (_, times[.delete]) = try timed { try namespace.ip(["-batch", deleteFile]) }
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
        (ContinuousClock.now - start).seconds
    }

    private func printReport(_ rows: [Row]) throws {
        func rate(_ value: Double?) -> String { value.map { String(format: "%.0f/s", $0) } ?? "-" }
        var report = BenchmarkReport("netlink")
        let what = objects == .sas ? "ESP SAs (aes-gcm-256)" : "policies"
        report.add("objects per method", "\(policies) IPv4 \(what)", key: "policies", value: policies)
        report.record("objects", objects.rawValue)
        report.add("repetitions", "\(runs) (median reported)", key: "runs", value: runs)
        report.add("ip per operation sample", "\(sample) operations", key: "sample", value: sample)
        report.record("unit", "\(objects == .sas ? "SAs" : "policies") per second")
        var table = TextTable([
            "phase", "backend", "ip -batch", "ip per op", "backend/batch", "backend cpu", "ip -batch cpu",
            "backend/batch cpu",
        ])
        for row in rows {
            table.add([
                row.phase.rawValue, rate(row.backend), rate(row.ipBatch), rate(row.ipPerOperation),
                String(format: "%.2fx", row.backendOverBatch), rate(row.backendCPU), rate(row.ipBatchCPU),
                String(format: "%.2fx", row.backendOverBatchCPU),
            ])
        }
        report.add(table)
        func hundredths(_ value: Double) -> Double { (value * 100).rounded() / 100 }
        report.record(
            "phases",
            rows.map { row -> [String: Any] in
                var entry: [String: Any] = [
                    "phase": row.phase.rawValue, "backend": row.backend.rounded(), "ipBatch": row.ipBatch.rounded(),
                    "backendOverBatch": hundredths(row.backendOverBatch), "backendCPU": row.backendCPU.rounded(),
                    "ipBatchCPU": row.ipBatchCPU.rounded(), "backendOverBatchCPU": hundredths(row.backendOverBatchCPU),
                ]
                if let perOperation = row.ipPerOperation { entry["ipPerOperation"] = perOperation.rounded() }
                return entry
            })
        try report.print()
    }
}
