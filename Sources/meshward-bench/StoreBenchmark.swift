import ArgumentParser
import Foundation
import Logging
import MeshwardCore
import Store

/// `meshward-bench store`: fills a store with a full mesh and times loading it back.
///
/// The fill issues every channel's generation and marks it active, in large transactions, as a
/// first `apply` on the fleet would. The load is `StateStore.loadChannels()`, which unseals
/// every key. Peak memory is the process's resident high-water mark during the load alone
/// (the mark is reset through `/proc/self/clear_refs` before it starts).
struct StoreBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Fill a state store with a full mesh, then time loading every channel and key."
    )

    @Option(help: "Nodes in the full mesh; channels = nodes * (nodes - 1).")
    var nodes = 1000

    @Option(help: "Channels per transaction while filling.")
    var batch = 20_000

    @Flag(help: "Use an in-memory store instead of a state directory on disk.")
    var inMemory = false

    @Option(help: "The state directory to fill (default: a temporary one, removed afterwards).")
    var stateDir: String?

    func run() async throws {
        guard nodes >= 2 else { throw ValidationError("--nodes must be at least 2") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        let capture = LoadProfile()
        let logger = Logger(label: "meshward.bench.store") { _ in LoadProfileHandler(profile: capture) }

        var temporary: String?
        let store: StateStore
        if inMemory {
            store = try StateStore.inMemory(masterKey: try KeyMaterial.random(count: 32), logger: logger)
        } else {
            let directory: String
            if let stateDir {
                directory = stateDir
            } else {
                let base = try FleetGenerator.temporaryDirectory().path
                temporary = base
                directory = base + "/state"
            }
            store = try StateStore.open(directory: directory, logger: logger)
        }
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }

        let channelCount = nodes * (nodes - 1)
        print(
            "filling \(channelCount) channels of a \(nodes)-node full mesh (\(inMemory ? "in memory" : "on disk"))...")
        let filled = try await measureBoth { try fill(store, channelCount: channelCount) }

        var reopenSeconds: Double?
        var loadStore = store
        if let directory = store.directory {
            // Load from a freshly opened store, as a restarted controller would.
            reopenSeconds = try await measure { loadStore = try StateStore.open(directory: directory, logger: logger) }
                .1
                .seconds
        }

        let before = MemoryStatus.read()
        MemoryStatus.resetPeak()
        let timedLoad = try await measureBoth { try loadStore.loadChannels() }
        let loaded = timedLoad.result
        let after = MemoryStatus.read()

        let keys = loaded.values.reduce(0) { $0 + $1.generations.count }
        guard loaded.count == channelCount, keys == channelCount,
            loaded.values.allSatisfy({ $0.active?.key.count == Cipher.aesGCM256.keyLength })
        else {
            throw ValidationError(
                "loadChannels returned \(loaded.count) channels and \(keys) keys; expected \(channelCount)")
        }
        let databaseBytes = store.directory.map { directorySize($0) }

        let result = StoreBenchmarkResult(
            nodes: nodes, channels: channelCount, storage: inMemory ? "memory" : "disk",
            fillSeconds: filled.wall.seconds, fillCPUSeconds: filled.cpu.seconds,
            fillChannelsPerSecond: Double(channelCount) / filled.wall.seconds,
            reopenSeconds: reopenSeconds, loadSeconds: timedLoad.wall.seconds, loadCPUSeconds: timedLoad.cpu.seconds,
            unsealSeconds: capture.unsealSeconds, loadChannelsPerSecond: Double(channelCount) / timedLoad.wall.seconds,
            residentBeforeLoadMiB: before.residentMiB, peakDuringLoadMiB: after.peakMiB,
            retainedByResultMiB: after.residentMiB - before.residentMiB,
            databaseMiB: databaseBytes.map { Double($0) / 1_048_576 })
        print(result.table)
        print(try result.json())
        withExtendedLifetime(loaded) {}
    }

    private func fill(_ store: StateStore, channelCount: Int) throws {
        let names = (0..<nodes).map { "node-\($0)" }
        // 198.18.0.0/15: room for 131,070 nodes.
        let addresses = (0..<nodes).map { FleetGenerator.hostAddress($0 + 1) }
        var requests: [GenerationRequest] = []
        requests.reserveCapacity(batch)
        let now = Date()
        var done = 0
        func flush() throws {
            guard !requests.isEmpty else { return }
            let issued = try store.issueGenerations(requests, now: now)
            let records = issued.map { generation -> ChannelRecord in
                var active = generation
                active.state = .active
                active.activatedAt = now
                return ChannelRecord(
                    id: generation.channel, step: .established, stepChangedAt: now, generations: [active])
            }
            try store.update(records)
            done += requests.count
            requests.removeAll(keepingCapacity: true)
            if done % 200_000 < batch { print("  \(done) channels") }
        }
        for from in 0..<nodes {
            for to in 0..<nodes where to != from {
                requests.append(
                    GenerationRequest(
                        channel: ChannelID(from: names[from], to: names[to], family: .ipv4), cipher: .aesGCM256,
                        source: addresses[from], destination: addresses[to]))
                if requests.count == batch { try flush() }
            }
        }
        try flush()
    }

    private func directorySize(_ path: String) -> Int {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return files.reduce(0) { total, file in
            let size = (try? FileManager.default.attributesOfItem(atPath: path + "/" + file)[.size] as? NSNumber)
            return total + (size?.intValue ?? 0)
        }
    }
}

/// The figures of one `meshward-bench store` run; the JSON keys are stable.
struct StoreBenchmarkResult: Encodable {
    var benchmark = "store"
    let nodes: Int
    let channels: Int
    let storage: String
    let fillSeconds: Double
    let fillCPUSeconds: Double
    let fillChannelsPerSecond: Double
    let reopenSeconds: Double?
    let loadSeconds: Double
    let loadCPUSeconds: Double
    let unsealSeconds: Double?
    let loadChannelsPerSecond: Double
    let residentBeforeLoadMiB: Double
    let peakDuringLoadMiB: Double
    let retainedByResultMiB: Double
    let databaseMiB: Double?

    enum CodingKeys: String, CodingKey {
        case benchmark, nodes, channels, storage
        case fillSeconds = "fill_seconds"
        case fillCPUSeconds = "fill_cpu_seconds"
        case fillChannelsPerSecond = "fill_channels_per_second"
        case reopenSeconds = "reopen_seconds"
        case loadSeconds = "load_seconds"
        case loadCPUSeconds = "load_cpu_seconds"
        case unsealSeconds = "unseal_seconds"
        case loadChannelsPerSecond = "load_channels_per_second"
        case residentBeforeLoadMiB = "resident_before_load_mib"
        case peakDuringLoadMiB = "peak_resident_during_load_mib"
        case retainedByResultMiB = "retained_by_result_mib"
        case databaseMiB = "state_directory_mib"
    }

    var table: String {
        func row(_ name: String, _ value: String) -> String {
            name.padding(toLength: 34, withPad: " ", startingAt: 0) + value
        }
        func number(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }
        var rows = [
            row("nodes", "\(nodes)"),
            row("channels (one active key each)", "\(channels)"),
            row("storage", storage),
            row(
                "fill",
                "\(number(fillSeconds)) s, \(number(fillCPUSeconds)) s CPU (\(number(fillChannelsPerSecond, 0)) channels/s)"
            ),
        ]
        if let reopenSeconds { rows.append(row("reopen (migrate, quick_check)", "\(number(reopenSeconds)) s")) }
        rows.append(
            row(
                "loadChannels",
                "\(number(loadSeconds)) s, \(number(loadCPUSeconds)) s CPU (\(number(loadChannelsPerSecond, 0)) channels/s)"
            ))
        if let unsealSeconds {
            rows.append(
                row(
                    "  of which unsealing keys",
                    "\(number(unsealSeconds)) s (\(number(100 * unsealSeconds / loadSeconds, 0))%)"))
        }
        rows += [
            row("resident before load", "\(number(residentBeforeLoadMiB, 0)) MiB"),
            row("peak resident during load", "\(number(peakDuringLoadMiB, 0)) MiB"),
            row("retained by the loaded channels", "\(number(retainedByResultMiB, 0)) MiB"),
        ]
        if let databaseMiB { rows.append(row("state directory on disk", "\(number(databaseMiB, 0)) MiB")) }
        return rows.joined(separator: "\n")
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

/// The process's resident memory, from `/proc/self/status` (Linux).
struct MemoryStatus {
    var residentMiB: Double
    var peakMiB: Double

    static func read() -> MemoryStatus {
        let text = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Double {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            // `VmHWM:\t  954556 kB`: a tab, then padding that vanishes at eight digits.
            let kilobytes =
                line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first
                .flatMap { Double($0) } ?? 0
            return kilobytes / 1024
        }
        return MemoryStatus(residentMiB: field("VmRSS"), peakMiB: field("VmHWM"))
    }

    /// Resets the resident high-water mark (`VmHWM`) to the current resident size.
    static func resetPeak() {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }
}

/// The phase timings `loadChannels` logs at debug level.
final class LoadProfile: @unchecked Sendable {
    private let lock = NSLock()
    private var unseal: Double?

    var unsealSeconds: Double? {
        lock.lock()
        defer { lock.unlock() }
        return unseal
    }

    func record(_ metadata: Logger.Metadata) {
        guard case .string(let text)? = metadata["store.unseal_seconds"], let seconds = Double(text) else { return }
        lock.lock()
        unseal = seconds
        lock.unlock()
    }
}

/// Keeps the store's "loaded channels" figures; prints nothing.
struct LoadProfileHandler: LogHandler {
    let profile: LoadProfile
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        if let metadata = event.metadata { profile.record(metadata) }
    }
}
