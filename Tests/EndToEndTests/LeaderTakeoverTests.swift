import Foundation
import MeshwardTestKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `meshward reconcile` as three processes on one PostgreSQL Store (and one simulated fleet):
/// one leads, two stand by and say so; the leader is killed (the test kit's crash fault: it
/// dies with `_exit(137)`, as SIGKILL leaves it, releasing nothing) at sampled kernel operations
/// of a rotation of every channel's key; a standby takes over before the dead leader's lease
/// expires and finishes the rotation, with continuity across the takeover and no SPI or key
/// issued twice.
@Suite("Leader and standbys on PostgreSQL", .serialized)
struct LeaderTakeoverTests {
    static let logLevel = ["MESHWARD_LOG_LEVEL": "notice"]

    /// The three-tier example with `drain: 0s`, rotated to AES-GCM-128: every channel gets a new
    /// generation, installed make-before-break, as a rekey does.
    static func rotated(_ text: String) -> String {
        text.replacingOccurrences(of: "cipher: aes-gcm-256", with: "cipher: aes-gcm-128")
    }

    static func lease(_ cli: MeshwardCLI) async throws -> [String: Any]? {
        try await cli.json("status").1["lease"] as? [String: Any]
    }

    static func date(_ value: Any?) -> Date? {
        (value as? String).flatMap { try? Date($0, strategy: .iso8601) }
    }

    @Test(
        "sampled: the leader killed mid-rotation of the three-tier fleet, a standby takes over within the TTL and finishes without a drop or a reused SPI or key",
        .enabled(if: TestDatabase.server != nil, TestDatabase.skipReason), .timeLimit(.minutes(30)))
    func standbyTakesOverSampled() async throws {
        let (original, total) = try await Self.rotationOperations()

        let points = CrashPoints.sample(count: 4, seed: 0x4d57_1701).points(
            total: total, label: "three-tier rotation under a reconcile leader")
        for crashAfter in points {
            try await takeover(
                original: original, crashAfter: crashAfter,
                label: "leader killed \(CrashScenario.crashText(crashAfter, of: total))")
        }
    }

    private func takeover(original: String, crashAfter: Int, label: String) async throws {
        var fleet = try await AppliedFleet(original, label: label)
        let (database, cli, spec) = (fleet.database, fleet.cli, fleet.spec)
        defer { cli.removeState() }

        // The leader: the first loop to start; its first cycle finds the fleet converged.
        let leader = try BackgroundCommand(
            cli, ["reconcile", spec, "--interval", "1h"], executable: MeshwardCLI.faultyBinary,
            environment: Self.logLevel.merging([SimulatedCrashFault.variable: "\(crashAfter)"]) { $1 })
        try #require(
            try await eventually {
                (try await Self.lease(cli)?["holder"] as? String)?.hasSuffix("pid \(leader.pid)") == true
            },
            "\(label): the first loop did not lead: \(leader.logText)")
        #expect(try await eventually { leader.logText.contains("leading: holds the lease") }, "\(leader.logText)")

        // Two standbys wait, and say so in their logs; status names the leader.
        let standbys = try (0..<2).map { _ in
            try BackgroundCommand(cli, ["reconcile", spec, "--interval", "2s"], environment: Self.logLevel)
        }
        for standby in standbys {
            #expect(
                try await eventually {
                    standby.logText.contains("standing by: another controller holds the lease")
                        && standby.logText.contains("pid \(leader.pid)")
                },
                "\(label): a standby did not say it waits: \(standby.logText)")
        }
        let led = try #require(try await Self.lease(cli))
        #expect((led["holder"] as? String)?.hasSuffix("pid \(leader.pid)") == true)
        let leaderEpoch = try #require(led["epoch"] as? Int)
        let leaderExpiry = try #require(Self.date(led["expires_at"]))
        #expect(Self.date(led["acquired_at"]) != nil)

        // The rotation: the spec changes under all three; the leader dies part way.
        try Self.rotated(original).write(toFile: spec, atomically: true, encoding: .utf8)
        let died = try await leader.waitForExit(seconds: 300)
        try #require(died == CrashScenario.killedStatus, "\(label): the leader exited \(String(describing: died))")
        let after = try CrashScenario(specFile: spec)
        try after.checkContinuity(cli, established: true, label: "\(label), the fleet the leader left")

        // A standby takes over and finishes the rotation.
        let standbyPIDs = standbys.map(\.pid)
        let tookOver = try await eventually(seconds: 300) {
            guard let lease = try await Self.lease(cli), let holder = lease["holder"] as? String,
                standbyPIDs.contains(where: { holder.hasSuffix("pid \($0)") })
            else { return false }
            return try await cli.run("plan", spec, "--detailed-exitcode").status == 0
        }
        try #require(tookOver, "\(label): no standby finished the rotation: \(standbys.map(\.logText))")
        let lease = try #require(try await Self.lease(cli))
        let newLeader = try #require(
            standbys.first { (lease["holder"] as? String)?.hasSuffix("pid \($0.pid)") == true })
        let other = try #require(standbys.first { $0.pid != newLeader.pid })
        #expect(try #require(lease["epoch"] as? Int) > leaderEpoch, "\(label): the takeover kept the epoch")
        // Within the TTL: the standby held the lease before the dead leader's could have lapsed
        // (both times are the server's clock).
        let acquired = try #require(Self.date(lease["acquired_at"]))
        #expect(acquired <= leaderExpiry, "\(label): taken over at \(acquired), the lease lapsed at \(leaderExpiry)")
        #expect(newLeader.logText.contains("leading: holds the lease"), "\(newLeader.logText)")
        #expect(other.process.isRunning, "\(label): the other standby stopped: \(other.logText)")
        print(
            "\(label): standby pid \(newLeader.pid) took over under epoch \(lease["epoch"] ?? "?") (was \(leaderEpoch))"
        )

        try await Self.checkRotationFinished(
            after, cli: cli, fingerprints: &fleet.fingerprints, baseline: fleet.baseline,
            baselineSPIs: fleet.baselineSPIs,
            standbys: standbys, label: label)
        withExtendedLifetime(database) {}
    }

    /// The three-tier example, and how many operations its rotation takes: a clean rotation on
    /// SQLite counts them, for the crash and kill points (one cycle of a loop, which does not
    /// wait for drains either).
    static func rotationOperations() async throws -> (original: String, total: Int) {
        let base = try CrashScenario(example: "three-tier.yaml")
        let original = try String(contentsOfFile: base.spec, encoding: .utf8)
        #expect(original.contains("cipher: aes-gcm-256"))
        let clean = try MeshwardCLI()
        defer { clean.removeState() }
        let cleanSpec = try MeshwardCLI.writeSpec(original, name: "three-tier.yaml")
        #expect(try await clean.run("apply", cleanSpec).status == 0)
        try rotated(original).write(toFile: cleanSpec, atomically: true, encoding: .utf8)
        let (status, rotated) = try await clean.json("apply", cleanSpec, "--no-wait")
        #expect(status == 0)
        return (original, try #require(rotated["operations"] as? Int))
    }

    /// After a takeover: continuity, no SPI or key issued twice, the fleet converged with its
    /// journal complete, every channel off its SPI of before the rotation; then the standbys
    /// stop cleanly on SIGTERM.
    static func checkRotationFinished(
        _ after: CrashScenario, cli: MeshwardCLI, fingerprints: inout FingerprintLedger, baseline: SPILedger,
        baselineSPIs: [String: String], standbys: [BackgroundCommand], label: String
    ) async throws {
        try after.checkContinuity(cli, established: true, label: "\(label), after the takeover")
        let spis = try await after.record(cli, ledger: &fingerprints, spis: baseline, label: label)
        try await after.checkConverged(cli, label: label)
        try await after.checkJournal(cli, spis: spis, label: label)
        let now = try await after.activeSPIs(cli)
        for (channel, spi) in baselineSPIs where now[channel] == spi {
            Issue.record("\(label): \(channel) still uses \(spi) after the rotation")
        }

        for standby in standbys { standby.send(SIGTERM) }
        for standby in standbys {
            #expect(
                try await standby.waitForExit() == 0, "\(label): a standby did not stop cleanly: \(standby.logText)")
        }
    }
}

/// A fresh PostgreSQL Store with the three-tier fleet applied, and what a takeover test compares
/// the rotated fleet with: the SPIs and key fingerprints issued so far, and each channel's SPI.
struct AppliedFleet {
    let database: TestDatabase
    let cli: MeshwardCLI
    let spec: String
    var fingerprints: FingerprintLedger
    let baseline: SPILedger
    let baselineSPIs: [String: String]

    init(_ original: String, label: String) async throws {
        database = try await TestDatabase.make()
        cli = try MeshwardCLI(database: database)
        spec = try MeshwardCLI.writeSpec(original, name: "three-tier.yaml")
        let before = try CrashScenario(specFile: spec)
        let first = try await cli.run("apply", spec)
        try #require(first.status == 0, "\(label): first apply: \(first.error)")
        var fingerprints = FingerprintLedger()
        baseline = try await before.record(cli, ledger: &fingerprints, label: label)
        self.fingerprints = fingerprints
        baselineSPIs = try await before.activeSPIs(cli)
    }
}
