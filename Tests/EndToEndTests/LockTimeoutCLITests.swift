import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `apply --lock-timeout` beside a real second controller: a `meshward reconcile` loop that
/// holds the Store's lease between its cycles, on SQLite and on PostgreSQL.
@Suite("apply --lock-timeout beside a reconcile loop")
struct LockTimeoutCLITests {
    /// The lease as `status --output json` shows it.
    static func lease(_ cli: MeshwardCLI) async throws -> [String: Any]? {
        try await cli.json("status").1["lease"] as? [String: Any]
    }

    static func establishedChannels(_ cli: MeshwardCLI) async throws -> Int {
        let channels = try await cli.json("status").1["channels"] as? [[String: Any]] ?? []
        return channels.filter { $0["step"] as? String == "established" }.count
    }

    @Test(
        "apply waits while a loop leads, naming it, times out with exit 1 and changes nothing, or runs once the loop stops",
        arguments: StoreKind.available)
    func waitsForTheLoop(store: StoreKind) async throws {
        let database = try await store.makeDatabase()
        let cli = try MeshwardCLI(database: database)
        defer { cli.removeState() }
        let loopSpec = try MeshwardCLI.writeSpec(ReconcileLoopTests.twoNodes)
        // Another directory: the loop watches its own spec's directory only.
        let applySpec = try MeshwardCLI.writeSpec(ReconcileLoopTests.threeNodes)

        let loop = try BackgroundCommand(
            cli, ["reconcile", loopSpec, "--interval", "1h"], environment: ["MESHWARD_LOG_LEVEL": "notice"])
        #expect(try await eventually { try await Self.establishedChannels(cli) == 2 }, "the loop did not converge")
        let lease = try #require(try await Self.lease(cli), "status shows no lease while the loop leads")
        let holder = try #require(lease["holder"] as? String)
        let epoch = try #require(lease["epoch"] as? Int)
        #expect(holder.hasSuffix("pid \(loop.pid)"), "\(holder)")
        #expect(lease["acquired_at"] is String && lease["expires_at"] is String)

        // A short timeout: apply says who holds the lease, waits, then gives up, exit 1.
        let refused = try await cli.run("apply", applySpec, "--lock-timeout", "1s")
        #expect(refused.status == 1)
        #expect(
            refused.error.contains(
                "waiting up to 1s for the Store's lease, held by '\(holder)' (epoch \(epoch), expires "),
            "\(refused.error)")
        #expect(refused.error.contains("meshward: error: the Store's lease is held by '\(holder)' (epoch \(epoch)"))
        #expect(refused.error.contains("(--lock-timeout 1s) and nothing was changed"), "\(refused.error)")
        #expect(try await Self.establishedChannels(cli) == 2)
        #expect(try await Self.lease(cli)?["holder"] as? String == holder)

        // A long one: apply waits, sending nothing beside the loop, and runs once the loop
        // stops and gives the lease back.
        let waiting = try BackgroundCommand(cli, ["apply", applySpec, "--lock-timeout", "10m", "--output", "json"])
        #expect(
            try await eventually {
                waiting.logText.contains("waiting up to 10m for the Store's lease, held by '\(holder)'")
            },
            "apply did not say it waits: \(waiting.logText)")
        #expect(waiting.process.isRunning)
        #expect(try await Self.establishedChannels(cli) == 2, "apply ran beside the loop")
        loop.send(SIGTERM)
        #expect(try await loop.waitForExit() == 0, "the loop did not stop on SIGTERM: \(loop.logText)")
        #expect(try await waiting.waitForExit() == 0, "the waiting apply failed: \(waiting.logText)")
        #expect(try await Self.establishedChannels(cli) == 4)
        let after = try #require(
            try JSONSerialization.jsonObject(with: Data(waiting.outputText.utf8)) as? [String: Any])
        #expect(after["outcome"] as? String != "blocked")
        // The apply gave the lease back: nobody leads now.
        #expect(try await Self.lease(cli) == nil)
        withExtendedLifetime(database) {}
    }

    @Test("--lock-timeout takes the spec's durations, zero included; a malformed one is a usage error, exit 1")
    func lockTimeoutSyntax() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = MeshwardCLI.example("minimal.yaml")
        for command in [["apply", spec], ["rekey", spec, "--all"]] {
            let malformed = try await cli.run(command + ["--lock-timeout", "5 minutes"])
            #expect(malformed.status == 1, "\(command)")
            #expect(malformed.error.contains("--lock-timeout: malformed duration '5 minutes'"), "\(malformed.error)")
            let negative = try await cli.run(command + ["--lock-timeout=-1s"])
            #expect(negative.status == 1)
            #expect(negative.error.contains("negative duration"), "\(negative.error)")
        }
        let zero = try await cli.run("apply", spec, "--lock-timeout", "0s")
        #expect(zero.status == 0, "\(zero.error)")
    }
}
