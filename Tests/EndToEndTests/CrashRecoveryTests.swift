import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestSupport
import Store
import StorePostgres
import Testing

/// The controller killed at a kernel operation (`MESHWARD_SIMULATED_CRASH_AFTER`, the simulated
/// fleet's crash fault): before the first one, after every Nth one of a run or a seeded sample,
/// and right after one the kernel refused; then restarted with a plain `apply`. Continuity holds
/// across the crash (in the fleet the dead controller left, every channel delivers on every
/// selector, and a channel that was established still encrypts), the fleet converges, holds no
/// orphaned object, every channel delivers, and no SPI or key is ever issued twice (design.md
/// sections 4 and 6).
@Suite("Crash recovery")
struct CrashRecoveryTests {
    @Test("minimal: killed before the first and after every operation of the first apply and of a rekey")
    func minimalEveryStep() async throws {
        let scenario = try CrashScenario(example: "minimal.yaml")
        try await scenario.run(firstApply: .every, rekey: .every)
    }

    /// 40 points of each run by default (about 80 s); `MESHWARD_TEST_CRASH_POINTS=all` tries every
    /// one of the 336 + 272 (about 10 minutes).
    @Test("three-tier: killed before the first and after a seeded sample of operations (apply, rekey)")
    func threeTierSampled() async throws {
        let scenario = try CrashScenario(example: "three-tier.yaml")
        if ProcessInfo.processInfo.environment["MESHWARD_TEST_CRASH_POINTS"] == "all" {
            try await scenario.run(firstApply: .every, rekey: .every)
        } else {
            try await scenario.run(
                firstApply: .sample(count: 40, seed: 0x4d57_0001), rekey: .sample(count: 40, seed: 0x4d57_0002))
        }
    }
}

/// The crash right after a refusal, in a suite of its own so that it runs beside the long
/// serialized one (it uses its own state directories).
@Suite("Crash recovery after a refusal")
struct RefusalCrashRecoveryTests {
    @Test("minimal: killed right after a refused operation of the first apply and of a rekey, apply recovers")
    func minimalRefused() async throws {
        let scenario = try CrashScenario(example: "minimal.yaml")
        try await scenario.runRefused()
    }
}

/// The fault lives in the test kit's `meshward-faulty` only.
@Suite("Crash fault only in the test build")
struct CrashFaultAbsentTests {
    @Test("the installed meshward ignores MESHWARD_SIMULATED_CRASH_AFTER and applies to the end")
    func releasedCommandHasNoFault() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = MeshwardCLI.example("minimal.yaml")
        let applied = try await cli.run(
            ["apply", spec, "--output", "json"], environment: ["MESHWARD_SIMULATED_CRASH_AFTER": "1"])
        #expect(applied.status == 0, "meshward exited \(applied.status): \(applied.error)")
        // The same run under meshward-faulty dies at its first operation: the variable is read there.
        let other = try MeshwardCLI()
        defer { other.removeState() }
        #expect(try await other.runCrashing(["apply", spec], crashAfter: "1").status == CrashScenario.killedStatus)
    }
}

/// Which crash points of a run to try.
enum CrashPoints {
    /// 0 (before the first operation) and every N from 1 to the run's operation count.
    case every
    /// 0, 1, the last, and distinct N up to `count` in all drawn with a fixed seed (printed, for replay).
    case sample(count: Int, seed: UInt64)

    func points(total: Int, label: String) -> [Int] {
        switch self {
        case .every:
            return Array(0...max(total, 1))
        case .sample(let count, let seed):
            guard count < total else { return Array(0...max(total, 1)) }
            var random = SeededRandom(seed: seed)
            var chosen: Set<Int> = [0, 1, total]
            while chosen.count < count { chosen.insert(Int.random(in: 1...total, using: &random)) }
            print("\(label): crash points sampled with seed 0x\(String(seed, radix: 16)) from 0...\(total)")
            return chosen.sorted()
        }
    }
}

/// One spec's crash runs, with the checks made after every restart.
struct CrashScenario {
    let spec: String
    let intent: FleetIntent
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    static let killedStatus: Int32 = 137

    /// A copy of an example spec with `drain: 0s`, so that each rekey run does not wait out a
    /// real drain; the drain gate itself is exercised by the reconciler's tests.
    init(example: String) throws {
        var text = try String(contentsOfFile: MeshwardCLI.example(example), encoding: .utf8)
        if text.contains("drain:") {
            text = text.replacingOccurrences(of: "drain: 5s", with: "drain: 0s")
        } else {
            text = text.replacingOccurrences(of: "cluster: lab\n", with: "cluster: lab\ndefaults:\n  drain: 0s\n")
        }
        try self.init(specFile: try MeshwardCLI.writeSpec(text, name: example))
        #expect(intent.channels.allSatisfy { $0.drain == .zero })
    }

    /// The checks for the spec in `specFile` as it is now.
    init(specFile: String) throws {
        spec = specFile
        let loaded = SpecLoader().load(paths: [spec])
        intent = try #require(loaded.intent, "\(loaded.diagnostics)")
    }

    func run(firstApply: CrashPoints, rekey: CrashPoints) async throws {
        let started = ContinuousClock.now
        var fingerprints = FingerprintLedger()

        // A clean run gives the totals and the converged state the rekey runs start from.
        let clean = try MeshwardCLI()
        defer { clean.removeState() }
        let (applyStatus, applied) = try await clean.json("apply", spec)
        #expect(applyStatus == 0)
        let applyTotal = try #require(applied["operations"] as? Int)
        let baseline = try await record(clean, ledger: &fingerprints)
        let baselineSPIs = try await activeSPIs(clean)
        let converged = try snapshot(clean)
        let (rekeyStatus, rekeyed) = try await clean.json("rekey", spec, "--all")
        #expect(rekeyStatus == 0)
        let rekeyTotal = try #require(rekeyed["operations"] as? Int)
        _ = try await record(clean, ledger: &fingerprints, spis: baseline)
        try await checkConverged(clean, label: "clean rekey")

        var runs = 0
        for crashAfter in firstApply.points(total: applyTotal, label: "\(intent.cluster) first apply") {
            let cli = try MeshwardCLI()
            defer { cli.removeState() }
            try await crashThenRecover(
                cli, command: ["apply", spec], crashAfter: crashAfter, ledger: &fingerprints,
                label: "first apply, killed \(Self.crashText(crashAfter, of: applyTotal))")
            runs += 1
        }
        for crashAfter in rekey.points(total: rekeyTotal, label: "\(intent.cluster) rekey") {
            let cli = try MeshwardCLI()
            defer { cli.removeState() }
            try restore(converged, into: cli)
            let label = "rekey --all, killed \(Self.crashText(crashAfter, of: rekeyTotal))"
            try await crashThenRecover(
                cli, command: ["rekey", spec, "--all"], crashAfter: crashAfter,
                ledger: &fingerprints, spis: baseline, label: label)
            let after = try await activeSPIs(cli)
            for (channel, spi) in baselineSPIs where after[channel] == spi {
                Issue.record("\(label): \(channel) still uses \(spi) after the restart")
            }
            runs += 1
        }
        print(
            """
            \(intent.cluster): \(applyTotal) operations to apply, \(rekeyTotal) to rekey; \
            \(runs) crash runs checked in \(ContinuousClock.now - started)
            """)
    }

    /// The kernel refuses one operation (a fault stored in the simulated fleet's file) and the
    /// controller dies right after the refusal: once in the first apply, once in a rekey.
    func runRefused() async throws {
        var fingerprints = FingerprintLedger()
        let clean = try MeshwardCLI()
        defer { clean.removeState() }
        let (applyStatus, _) = try await clean.json("apply", spec)
        #expect(applyStatus == 0)
        let baseline = try await record(clean, ledger: &fingerprints)
        let converged = try snapshot(clean)
        let refusing = try #require(intent.nodes.last?.name)

        let first = try MeshwardCLI()
        defer { first.removeState() }
        try FileManager.default.createDirectory(
            at: first.stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try refuse(operation: 2, on: refusing, in: first, creating: true)
        try await crashThenRecover(
            first, command: ["apply", spec], crashAt: "refused:1", ledger: &fingerprints,
            label: "first apply, killed after \(refusing) refused its operation 2")

        let rekey = try MeshwardCLI()
        defer { rekey.removeState() }
        try restore(converged, into: rekey)
        try refuse(operation: 1, on: refusing, in: rekey, creating: false)
        try await crashThenRecover(
            rekey, command: ["rekey", spec, "--all"], crashAt: "refused:1", ledger: &fingerprints, spis: baseline,
            label: "rekey --all, killed after \(refusing) refused its operation 1")
    }

    /// Stores in `cli`'s simulated fleet a fault: `node` refuses its `nth` next operation (ENOBUFS).
    private func refuse(operation nth: Int, on node: String, in cli: MeshwardCLI, creating: Bool) throws {
        let file = cli.stateDirectory.appendingPathComponent("simulated-fleet.sqlite")
        let fleet = try SimulatedFleet.load(from: file)
        fleet.withState { state in
            if creating {
                for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
            }
            state.failOperation(on: node, nth: nth, errno: ENOBUFS)
        }
        try fleet.save(to: file)
    }

    /// Continuity in the fleet as saved: every channel delivers on every selector; with
    /// `established`, encrypted (a rekey never sends a packet in plaintext).
    func checkContinuity(_ cli: MeshwardCLI, established: Bool, label: String) throws {
        let fleet = try SimulatedFleet.load(from: cli.stateDirectory.appendingPathComponent("simulated-fleet.sqlite"))
        for channel in intent.channels where fleet.state.nodes[channel.id.from] != nil {
            for traffic in channel.traffic {
                let outcome = fleet.send(
                    from: channel.id.from, to: channel.destination, transport: traffic.transport ?? .udp,
                    sourcePort: traffic.sourcePort ?? 40_000, destinationPort: traffic.destinationPort ?? 4_000)
                switch outcome {
                case .deliveredEncrypted: continue
                case .deliveredPlaintext where !established: continue
                default: Issue.record("\(label): \(channel.id) \(traffic): \(outcome)")
                }
            }
        }
    }

    /// Kills the command after operation `crashAfter`, records what the Store and the fleet
    /// hold, restarts with a plain `apply`, and checks the result.
    private func crashThenRecover(
        _ cli: MeshwardCLI, command: [String], crashAfter: Int,
        ledger fingerprints: inout FingerprintLedger, spis: SPILedger = SPILedger(),
        label: String
    ) async throws {
        try await crashThenRecover(
            cli, command: command, crashAt: "\(crashAfter)", ledger: &fingerprints, spis: spis, label: label)
    }

    static func crashText(_ crashAfter: Int, of total: Int) -> String {
        crashAfter == 0 ? "before its first operation (of \(total))" : "after operation \(crashAfter) of \(total)"
    }

    private func crashThenRecover(
        _ cli: MeshwardCLI, command: [String], crashAt: String,
        ledger fingerprints: inout FingerprintLedger, spis: SPILedger = SPILedger(),
        label: String
    ) async throws {
        let established = command.first == "rekey"
        let crashed = try await cli.runCrashing(command, crashAfter: crashAt)
        try #require(
            crashed.status == Self.killedStatus,
            "\(label): exited \(crashed.status): \(crashed.error) \(crashed.output)")
        try checkContinuity(cli, established: established, label: "\(label), the fleet the crash left")
        var spis = try await record(cli, ledger: &fingerprints, spis: spis, label: label)

        let restarted = try await cli.run("apply", spec, "--output", "json")
        try #require(restarted.status == 0, "\(label): restart exited \(restarted.status): \(restarted.error)")
        spis = try await record(cli, ledger: &fingerprints, spis: spis, label: label)
        try await checkConverged(cli, label: label)
        try await checkJournal(cli, spis: spis, label: label)
    }

    // MARK: - Checks

    /// `plan --detailed-exitcode` exits 0, status shows every channel established without drift,
    /// the fleet holds exactly the channels' objects, and each channel delivers encrypted with
    /// its active SPI.
    func checkConverged(_ cli: MeshwardCLI, label: String) async throws {
        let plan = try await cli.run("plan", spec, "--detailed-exitcode")
        #expect(plan.status == 0, "\(label): plan --detailed-exitcode exited \(plan.status): \(plan.output)")

        let (status, document) = try await cli.json("status")
        #expect(status == 0, "\(label): status exited \(status)")
        let channels = document["channels"] as? [[String: Any]] ?? []
        #expect(channels.count == intent.channels.count, "\(label): status shows \(channels.count) channels")
        for channel in channels where channel["step"] as? String != "established" || channel["drift"] as? Bool != false
        {
            Issue.record(
                "\(label): \(channel["channel"] ?? "?") is \(channel["step"] ?? "?"): \(channel["drift_detail"] ?? "")")
        }
        let nodes = document["nodes"] as? [[String: Any]] ?? []
        let sas = nodes.reduce(0) { $0 + ($1["security_associations"] as? Int ?? 0) }
        let policies = nodes.reduce(0) { $0 + ($1["policies"] as? Int ?? 0) }
        let expectedPolicies = intent.channels.reduce(0) { $0 + 2 * $1.traffic.count }
        #expect(sas == 2 * intent.channels.count, "\(label): \(sas) SAs, want \(2 * intent.channels.count)")
        #expect(policies == expectedPolicies, "\(label): \(policies) policies, want \(expectedPolicies)")

        let fleet = try SimulatedFleet.load(from: cli.stateDirectory.appendingPathComponent("simulated-fleet.sqlite"))
        let active = Dictionary(
            channels.compactMap { channel in
                (channel["channel"] as? String).flatMap { id in (channel["spi"] as? String).map { (id, $0) } }
            }, uniquingKeysWith: { first, _ in first })
        for channel in intent.channels {
            for traffic in channel.traffic {
                let outcome = fleet.send(
                    from: channel.id.from, to: channel.destination, transport: traffic.transport ?? .udp,
                    sourcePort: traffic.sourcePort ?? 40_000, destinationPort: traffic.destinationPort ?? 4_000)
                guard case .deliveredEncrypted(let spi) = outcome else {
                    Issue.record("\(label): \(channel.id) \(traffic): \(outcome)")
                    continue
                }
                #expect(active[channel.id.description] == spi.hex, "\(label): \(channel.id) encrypts with \(spi.hex)")
            }
        }
    }

    /// Every SA the journal says was added is a generation the Store issued.
    func checkJournal(_ cli: MeshwardCLI, spis: SPILedger, label: String) async throws {
        let store = try await openStore(cli)
        for entry in try await store.journal(limit: nil, node: nil) where entry.operation == "add-sa" {
            // "SOURCE -> DESTINATION spi 0x... cipher"
            let words = entry.target.split(separator: " ").map(String.init)
            guard words.count >= 5, let destination = IPAddress(words[2]) else {
                Issue.record("\(label): journal target '\(entry.target)' does not name an SA")
                continue
            }
            if spis.identity(of: destination, spi: words[4]) == nil {
                Issue.record("\(label): the journal added \(entry.target), which the Store never issued")
            }
        }
    }

    /// Records every generation the Store holds and every owned SA in the fleet: an SPI names
    /// one generation per destination, and a key fingerprint one generation, ever.
    @discardableResult
    func record(
        _ cli: MeshwardCLI, ledger fingerprints: inout FingerprintLedger, spis: SPILedger = SPILedger(),
        label: String = "clean run"
    ) async throws -> SPILedger {
        var spis = spis
        let store = try await openStore(cli)
        for record in try await store.loadChannels().values {
            for generation in record.generations {
                let identity = "\(record.id) generation \(generation.number)"
                if let clash = spis.note(generation.destination, spi: generation.spi.hex, identity: identity) {
                    Issue.record("\(label): spi \(generation.spi.hex) at \(generation.destination) reused: \(clash)")
                }
                if let clash = fingerprints.note(
                    generation.key.fingerprint, identity: "\(identity) spi \(generation.spi.hex)")
                {
                    Issue.record("\(label): a key of \(identity) repeats one of \(clash)")
                }
            }
        }
        let fleet = try SimulatedFleet.load(from: cli.stateDirectory.appendingPathComponent("simulated-fleet.sqlite"))
        for node in fleet.state.nodes.values {
            for sa in node.securityAssociations where sa.reqid == Reqid(intent.reqid) {
                guard let identity = spis.identity(of: sa.destination, spi: sa.spi.hex) else {
                    Issue.record("\(label): \(node.name) holds spi \(sa.spi.hex) the Store never issued")
                    continue
                }
                if fingerprints.identity(of: sa.key.fingerprint) != "\(identity) spi \(sa.spi.hex)" {
                    Issue.record("\(label): \(node.name) holds spi \(sa.spi.hex) with a key that is not \(identity)'s")
                }
            }
        }
        return spis
    }

    func activeSPIs(_ cli: MeshwardCLI) async throws -> [String: String] {
        let (_, document) = try await cli.json("status")
        var result: [String: String] = [:]
        for channel in document["channels"] as? [[String: Any]] ?? [] {
            if let id = channel["channel"] as? String, let spi = channel["spi"] as? String { result[id] = spi }
        }
        return result
    }

    /// The Store `cli` runs on: SQLite in its state directory, or PostgreSQL at its `--store`.
    func openStore(_ cli: MeshwardCLI) async throws -> any ControllerStore {
        guard let at = cli.storeArguments.firstIndex(of: "--store"),
            let keyAt = cli.storeArguments.firstIndex(of: "--master-key-file")
        else { return try StateStore.open(directory: cli.stateDirectory.path, logger: logger) }
        return try await PostgresStore.open(
            url: try PostgresStoreURL(cli.storeArguments[at + 1]), masterKeyPath: cli.storeArguments[keyAt + 1],
            logger: logger)
    }

    // MARK: - State directory copies

    private func snapshot(_ cli: MeshwardCLI) throws -> URL {
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent(
            "meshward-converged-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: cli.stateDirectory, to: copy)
        return copy
    }

    private func restore(_ snapshot: URL, into cli: MeshwardCLI) throws {
        try FileManager.default.copyItem(at: snapshot, to: cli.stateDirectory)
    }
}

/// Destination and SPI -> the generation that holds them, for one state directory.
struct SPILedger {
    private var owners: [String: String] = [:]

    /// Records `identity` for the SPI; returns the other identity when the SPI already names one.
    mutating func note(_ destination: IPAddress, spi: String, identity: String) -> String? {
        let key = "\(destination) \(spi)"
        if let owner = owners[key], owner != identity { return owner }
        owners[key] = identity
        return nil
    }

    func identity(of destination: IPAddress, spi: String) -> String? { owners["\(destination) \(spi)"] }
}

/// Key fingerprint -> the generation that holds it, across every run of a scenario.
struct FingerprintLedger {
    private var owners: [String: String] = [:]

    mutating func note(_ fingerprint: String, identity: String) -> String? {
        if let owner = owners[fingerprint], owner != identity { return owner }
        owners[fingerprint] = identity
        return nil
    }

    func identity(of fingerprint: String) -> String? { owners[fingerprint] }
}
