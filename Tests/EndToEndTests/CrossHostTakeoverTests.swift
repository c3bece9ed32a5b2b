import Controller
import Foundation
import MeshwardTestKit
import Reconciler
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `meshward reconcile` as three processes that stand for controllers on three hosts (each names
/// another host in the lease, the test kit's `SimulatedHost`), on one PostgreSQL Store and one
/// simulated fleet. No standby can check the leader's pid, so when the test kills the leader
/// (a real SIGKILL, sent while the leader's pass is held right after a sampled kernel operation
/// of a rotation of every key) a standby waits for the lease to lapse and takes it at its next
/// turn, then finishes the rotation with continuity across the takeover and no SPI or key
/// issued twice.
@Suite("Leader and standbys on different hosts, on PostgreSQL", .serialized)
struct CrossHostTakeoverTests {
    /// How long the lease lasts unrenewed, and how often a standby tries to take it.
    static let ttl = TimeInterval(LeaseKeeper.loopTTL.components.seconds)
    static let turn = ttl / 3
    /// What a loaded two-core machine may add to a standby's turn (its timer, a status query,
    /// one transaction): the test fails when the takeover comes later than a turn and this.
    static let lateness: TimeInterval = 2

    @Test(
        "sampled: the leader on another host killed with SIGKILL mid-rotation of the three-tier fleet, a standby takes the lease once it lapses, at its next turn, and finishes without a drop or a reused SPI or key",
        .enabled(if: TestDatabase.server != nil, TestDatabase.skipReason), .timeLimit(.minutes(30)))
    func standbyWaitsOutAnotherHostsLease() async throws {
        let (original, total) = try await LeaderTakeoverTests.rotationOperations()

        // The pause that holds the leader for its kill comes after an applied operation: 1 at least.
        let points = Set(
            CrashPoints.sample(count: 4, seed: 0x4d57_1702).points(
                total: total, label: "three-tier rotation under a leader on another host"
            ).map { max($0, 1) })
        for killAfter in points.sorted() {
            try await takeover(
                original: original, killAfter: killAfter, label: "leader killed after \(killAfter) of \(total)")
        }
    }

    private func takeover(original: String, killAfter: Int, label: String) async throws {
        var fleet = try await AppliedFleet(original, label: label)
        let (database, cli, spec) = (fleet.database, fleet.cli, fleet.spec)
        defer { cli.removeState() }

        let pauseFile = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-pause-\(UUID())")
        defer { try? FileManager.default.removeItem(at: pauseFile) }
        let leader = try BackgroundCommand(
            cli, ["reconcile", spec, "--interval", "1h"], executable: MeshwardCLI.faultyBinary,
            environment: LeaderTakeoverTests.logLevel.merging([
                SimulatedHost.variable: "leader.example",
                SimulatedPauseFault.variable: "\(killAfter):\(pauseFile.path)",
            ]) { $1 })
        let leaderHolder = "leader.example pid \(leader.pid)"
        try #require(
            try await eventually { try await LeaderTakeoverTests.lease(cli)?["holder"] as? String == leaderHolder },
            "\(label): the first loop did not lead: \(leader.logText)")
        let standbys = try (1...2).map { number in
            try BackgroundCommand(
                cli, ["reconcile", spec, "--interval", "2s"], executable: MeshwardCLI.faultyBinary,
                environment: LeaderTakeoverTests.logLevel.merging([SimulatedHost.variable: "standby-\(number).example"])
                {
                    $1
                })
        }
        for standby in standbys {
            #expect(
                try await eventually {
                    standby.logText.contains("standing by: another controller holds the lease")
                        && standby.logText.contains(leaderHolder)
                },
                "\(label): a standby did not say it waits: \(standby.logText)")
        }
        let leaderEpoch = try #require(try await LeaderTakeoverTests.lease(cli)?["epoch"] as? Int)

        // The rotation: the leader's pass is held after its operation `killAfter`, and killed there.
        try LeaderTakeoverTests.rotated(original).write(toFile: spec, atomically: true, encoding: .utf8)
        try #require(
            try await eventually(seconds: 300) { FileManager.default.fileExists(atPath: pauseFile.path) },
            "\(label): the leader's pass did not reach its operation \(killAfter): \(leader.logText)")
        leader.send(SIGKILL)
        let killedAt = Date()
        #expect(try await leader.waitForExit() != nil, "\(label): the leader still runs after SIGKILL")
        #expect(leader.process.terminationReason == .uncaughtSignal && leader.process.terminationStatus == SIGKILL)
        let left = try #require(try await LeaderTakeoverTests.lease(cli), "\(label): no lease after the kill")
        #expect(left["holder"] as? String == leaderHolder, "\(label): the lease changed hands before it lapsed")
        let lapse = try #require(LeaderTakeoverTests.date(left["expires_at"]))
        let after = try CrashScenario(specFile: spec)
        try after.checkContinuity(cli, established: true, label: "\(label), the fleet the leader left")

        // A standby takes the lease once it lapses, and finishes the rotation.
        let standbyHolders = standbys.map { ($0, "standby-", "pid \($0.pid)") }
        var tookOverSeen: Date?
        let finished = try await eventually(seconds: 300) {
            guard let holder = try await LeaderTakeoverTests.lease(cli)?["holder"] as? String,
                standbyHolders.contains(where: { holder.hasPrefix($0.1) && holder.hasSuffix($0.2) })
            else { return false }
            if tookOverSeen == nil { tookOverSeen = Date() }
            guard try await cli.run("plan", spec, "--detailed-exitcode").status == 0 else { return false }
            // Finished means drained too: plan shows no change while the old SAs wait out the drain.
            let (_, document) = try await cli.json("status")
            let channels = document["channels"] as? [[String: Any]] ?? []
            return !channels.isEmpty && channels.allSatisfy { $0["step"] as? String == "established" }
        }
        try #require(finished, "\(label): no standby finished the rotation: \(standbys.map(\.logText))")
        let lease = try #require(try await LeaderTakeoverTests.lease(cli))
        let newLeader = try #require(
            standbys.first { (lease["holder"] as? String)?.hasSuffix("pid \($0.pid)") == true })
        #expect(try #require(lease["epoch"] as? Int) > leaderEpoch, "\(label): the takeover kept the epoch")
        // Both times are the database server's clock: the standby took the lease no sooner than
        // it lapsed (it could not know the leader was dead) and within one turn after.
        let acquired = try #require(LeaderTakeoverTests.date(lease["acquired_at"]))
        let afterLapse = acquired.timeIntervalSince(lapse)
        #expect(afterLapse >= 0, "\(label): taken over at \(acquired), before the lease lapsed at \(lapse)")
        #expect(
            afterLapse <= Self.turn + Self.lateness,
            "\(label): taken over \(afterLapse) s after the lease lapsed; a standby's turn is \(Self.turn) s")
        print(
            "\(label): lease lapsed at \(lapse.formatted(.iso8601)), standby pid \(newLeader.pid) took it "
                + "\(Int(afterLapse)) s later (whole seconds, as status shows them; TTL \(Int(Self.ttl)) s, turn \(Int(Self.turn)) s), "
                + "seen by the test \(String(format: "%.1f", (tookOverSeen ?? Date()).timeIntervalSince(killedAt))) s "
                + "after the SIGKILL; epoch \(lease["epoch"] ?? "?") (was \(leaderEpoch))")

        try await LeaderTakeoverTests.checkRotationFinished(
            after, cli: cli, fingerprints: &fleet.fingerprints, baseline: fleet.baseline,
            baselineSPIs: fleet.baselineSPIs,
            standbys: standbys, label: label)
        withExtendedLifetime(database) {}
    }
}
