import ArgumentParser
import Foundation
import Logging
import MeshwardCore
import Store
import StorePostgres

/// `meshward-bench store`: fills a store with a full mesh and times loading it back, and a pass.
///
/// The fill issues every channel's generation and marks it active, in large transactions, as a
/// first `apply` on the fleet would. The load is `loadChannels()`, which unseals every key, from
/// a freshly opened store. The pass is what a reconcile pass asks of the Store when a share of
/// the channels rotate (`--pass-share`, default 1%): load every channel, issue the rotating
/// channels' generations, update their records, append their journal entries (four operations
/// each) and complete them. Peak memory is the process's resident high-water mark during the
/// load alone (the mark is reset through `/proc/self/clear_refs` before it starts).
///
/// With `--store postgres://…` the same figures are taken on SQLite (on disk) and on PostgreSQL
/// in one run, each in its own fresh database (a schema of its own on the server, dropped
/// afterwards), and the ratio of PostgreSQL's pass to SQLite's is printed.
struct StoreBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Fill a Store with a full mesh, then time loading every channel and key, and a pass; "
            + "on SQLite, and beside it on PostgreSQL with --store."
    )

    @Option(help: "Nodes in the full mesh; channels = nodes * (nodes - 1).")
    var nodes = 1000

    @Option(help: "Stop at this many channels of the mesh (its nodes grow to fit); default: the whole mesh.")
    var channels: Int?

    @Option(help: "Channels per transaction while filling.")
    var batch = 20_000

    @Option(help: "The share of channels that rotate in the timed pass, from 0 to 1.")
    var passShare = 0.01

    @Flag(help: "Use an in-memory SQLite store instead of a state directory on disk.")
    var inMemory = false

    @Option(help: "The state directory to fill (default: a temporary one, removed afterwards).")
    var stateDir: String?

    @Option(
        name: .customLong("store"),
        help: ArgumentHelp(
            "Also run on PostgreSQL at this URL (postgres://USER@HOST:PORT/DB; password from PGPASSWORD), "
                + "in a schema of its own that is dropped afterwards.", valueName: "url"))
    var postgres: String?

    func validate() throws {
        guard nodes >= 2 else { throw ValidationError("--nodes must be at least 2") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if let channels, channels < 1 { throw ValidationError("--channels must be at least 1") }
        guard passShare >= 0, passShare <= 1 else { throw ValidationError("--pass-share must be between 0 and 1") }
        if let postgres {
            do {
                _ = try PostgresStoreURL(postgres)
            } catch {
                throw ValidationError("--store: \(error.description)")
            }
        }
    }

    /// The mesh's node count and channel count: `--channels` grows the nodes to fit.
    var mesh: (nodes: Int, channels: Int) {
        guard let channels else { return (nodes, nodes * (nodes - 1)) }
        var count = 2
        while count * (count - 1) < channels { count += 1 }
        return (count, channels)
    }

    func run() async throws {
        let capture = LoadProfile()
        let logger = Logger(label: "meshward.bench.store") { _ in LoadProfileHandler(profile: capture) }
        var results: [StoreBenchmarkResult] = []
        results.append(try await runSQLite(capture: capture, logger: logger))
        if let postgres {
            results.append(try await runPostgres(try PostgresStoreURL(postgres), capture: capture, logger: logger))
        }
        if results.count == 2 {
            let ratio = results[1].passSeconds / results[0].passSeconds
            print(
                "pass on PostgreSQL / pass on SQLite: \(String(format: "%.2f", ratio))x "
                    + "(\(String(format: "%.2f", results[1].passSeconds)) s / \(String(format: "%.2f", results[0].passSeconds)) s)"
            )
        }
    }

    private func runSQLite(capture: LoadProfile, logger: Logger) async throws -> StoreBenchmarkResult {
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
        return try await measure(
            store, storage: inMemory ? "SQLite in memory" : "SQLite on disk", capture: capture,
            reopen: store.directory.map { directory in
                { try StateStore.open(directory: directory, logger: logger) }
            },
            size: { store.directory.map { Double(directorySize($0)) / 1_048_576 } })
    }

    private func runPostgres(
        _ url: PostgresStoreURL, capture: LoadProfile, logger: Logger
    ) async throws -> StoreBenchmarkResult {
        let schema = "meshward_bench_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let sealer = try AESGCMKeySealer(masterKey: try KeyMaterial.random(count: 32))
        let environment = ProcessInfo.processInfo.environment
        func open(_ preparation: PostgresStore.Preparation) throws -> PostgresStore {
            try PostgresStore(
                url: url, environment: environment, schema: schema, preparation: preparation, leaseClock: .database,
                sealer: sealer, masterKeyPath: nil, logger: logger)
        }
        let store = try open(.migrate)
        do {
            let result = try await measure(
                store, storage: "PostgreSQL", capture: capture, reopen: { try open(.verify) },
                size: { try? await store.schemaMiB() })
            try await store.dropSchema()
            return result
        } catch {
            try? await store.dropSchema()
            throw error
        }
    }

    /// Fill, reopen, load and pass on one store.
    private func measure(
        _ store: any ControllerStore, storage: String, capture: LoadProfile,
        reopen: (() throws -> any ControllerStore)?, size: () async -> Double?
    ) async throws -> StoreBenchmarkResult {
        let (nodeCount, channelCount) = mesh
        print("filling \(channelCount) channels of a \(nodeCount)-node full mesh (\(storage))...")
        let filled = try await measureBoth { try await fill(store, nodes: nodeCount, channelCount: channelCount) }

        var reopenSeconds: Double?
        var loadStore = store
        if let reopen {
            // Load from a freshly opened store, as a restarted controller would.
            reopenSeconds = try await measureBoth {
                loadStore = try reopen()
                // PostgreSQL connects (and checks schema and master key) on first use.
                _ = try await loadStore.currentLease()
            }.wall.seconds
        }

        let before = MemoryStatus.read()
        MemoryStatus.resetPeak()
        let timedLoad = try await measureBoth { try await loadStore.loadChannels() }
        let loaded = timedLoad.result
        let after = MemoryStatus.read()
        let unseal = capture.unsealSeconds

        let keys = loaded.values.reduce(0) { $0 + $1.generations.count }
        guard loaded.count == channelCount, keys == channelCount,
            loaded.values.allSatisfy({ $0.active?.key.count == Cipher.aesGCM256.keyLength })
        else {
            throw ValidationError(
                "loadChannels returned \(loaded.count) channels and \(keys) keys; expected \(channelCount)")
        }
        withExtendedLifetime(loaded) {}

        let rotating = Int((Double(channelCount) * passShare).rounded())
        let pass = try await measureBoth { try await self.pass(loadStore, rotating: rotating) }
        let databaseMiB = await size()

        let result = StoreBenchmarkResult(
            nodes: nodeCount, channels: channelCount, storage: storage,
            fillSeconds: filled.wall.seconds, fillCPUSeconds: filled.cpu.seconds,
            fillChannelsPerSecond: Double(channelCount) / filled.wall.seconds,
            reopenSeconds: reopenSeconds, loadSeconds: timedLoad.wall.seconds, loadCPUSeconds: timedLoad.cpu.seconds,
            unsealSeconds: unseal, loadChannelsPerSecond: Double(channelCount) / timedLoad.wall.seconds,
            residentBeforeLoadMiB: before.residentMiB, peakDuringLoadMiB: after.peakMiB,
            retainedByResultMiB: after.residentMiB - before.residentMiB,
            passRotating: rotating, passSeconds: pass.wall.seconds, passCPUSeconds: pass.cpu.seconds,
            passLoadSeconds: pass.result.load, passWriteSeconds: pass.result.writes,
            databaseMiB: databaseMiB)
        print(result.table)
        print(try result.json())
        return result
    }

    private func fill(_ store: any ControllerStore, nodes: Int, channelCount: Int) async throws {
        let names = (0..<nodes).map { "node-\($0)" }
        // 198.18.0.0/15: room for 131,070 nodes.
        let addresses = (0..<nodes).map { FleetGenerator.hostAddress($0 + 1) }
        var requests: [GenerationRequest] = []
        requests.reserveCapacity(batch)
        let now = Date()
        var done = 0
        func flush() async throws {
            guard !requests.isEmpty else { return }
            let issued = try await store.issueGenerations(requests, now: now)
            let records = issued.map { generation -> ChannelRecord in
                var active = generation
                active.state = .active
                active.activatedAt = now
                return ChannelRecord(
                    id: generation.channel, step: .established, stepChangedAt: now, generations: [active])
            }
            try await store.update(records)
            done += requests.count
            requests.removeAll(keepingCapacity: true)
            if done % 200_000 < batch { print("  \(done) channels") }
        }
        var queued = 0
        fillLoop: for from in 0..<nodes {
            for to in 0..<nodes where to != from {
                guard queued < channelCount else { break fillLoop }
                requests.append(
                    GenerationRequest(
                        channel: ChannelID(from: names[from], to: names[to], family: .ipv4), cipher: .aesGCM256,
                        source: addresses[from], destination: addresses[to]))
                queued += 1
                if requests.count == batch { try await flush() }
            }
        }
        try await flush()
    }

    /// One pass in which `rotating` channels rotate: the Store calls a reconcile pass makes,
    /// in its order (load; issue; update; journal planned; journal completed). Returns the
    /// load's and the writes' wall seconds.
    private func pass(_ store: any ControllerStore, rotating: Int) async throws -> (load: Double, writes: Double) {
        let load = try await measureBoth { try await store.loadChannels() }
        let records = load.result
        let chosen = records.values.sorted { $0.id < $1.id }.prefix(rotating)
        let writes = try await measureBoth {
            let now = Date()
            let requests = chosen.compactMap { record -> GenerationRequest? in
                guard let active = record.active else { return nil }
                return GenerationRequest(
                    channel: record.id, cipher: active.cipher, source: active.source, destination: active.destination,
                    avoiding: [active.spi])
            }
            let issued = try await store.issueGenerations(requests, now: now)
            var updated: [ChannelRecord] = []
            updated.reserveCapacity(issued.count)
            for (record, generation) in zip(chosen, issued) {
                var record = record
                record.generations.append(generation)
                record.step = .rekeying
                record.stepChangedAt = now
                updated.append(record)
            }
            try await store.update(updated)
            let entries = updated.flatMap { record in
                ["add-sa", "add-sa", "update-policy", "update-policy"].map { operation in
                    JournalEntry(
                        node: record.id.from, operation: operation, target: "\(record.id)", channel: record.id,
                        plannedAt: now, result: .planned, revision: nil)
                }
            }
            let journaled = try await store.appendJournal(entries)
            try await store.completeJournal(
                journaled.map { entry in
                    var entry = entry
                    entry.appliedAt = now
                    entry.result = .applied
                    return entry
                })
        }
        return (load.wall.seconds, writes.wall.seconds)
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
    let passRotating: Int
    let passSeconds: Double
    let passCPUSeconds: Double
    let passLoadSeconds: Double
    let passWriteSeconds: Double
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
        case passRotating = "pass_rotating_channels"
        case passSeconds = "pass_seconds"
        case passCPUSeconds = "pass_cpu_seconds"
        case passLoadSeconds = "pass_load_seconds"
        case passWriteSeconds = "pass_write_seconds"
        case databaseMiB = "database_mib"
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
        if let reopenSeconds { rows.append(row("reopen (schema and key checks)", "\(number(reopenSeconds)) s")) }
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
        rows += [
            row(
                "pass (\(passRotating) channels rotate)",
                "\(number(passSeconds)) s, \(number(passCPUSeconds)) s CPU (this process)"),
            row("  load every channel", "\(number(passLoadSeconds)) s"),
            row("  issue, update, journal", "\(number(passWriteSeconds)) s"),
        ]
        if let databaseMiB { rows.append(row("database size", "\(number(databaseMiB, 0)) MiB")) }
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
