import Foundation
import KernelSimulator
import MeshwardCore
import MeshwardTestKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A PostgreSQL cluster of the test's own (`scripts/test-postgres` in a directory and on a port
/// of its own), so that stopping it disturbs no other test; durable commits
/// (`synchronous_commit=on`), so that a server killed keeps what it committed.
final class PrivatePostgres {
    let directory: URL
    let port: Int
    private(set) var server = ""

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-pg-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = Int.random(in: 55_000...55_999)
    }

    /// Runs `scripts/test-postgres COMMAND` on this cluster. Spawned directly and waited for
    /// with `waitpid`, every descriptor above standard error closed: the server it starts keeps
    /// what it inherits, and Foundation's `Process` waits for one of those to close before it
    /// sees the script end. `waitpid` blocks its thread, so it runs on a thread of its own, not
    /// on one of the cooperative pool's.
    @discardableResult
    func script(_ command: String, stopMode: String = "fast") async throws -> MeshwardCLI.Result {
        let pid = try spawn(command, stopMode: stopMode)
        let status = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: Self.exitStatus(of: pid)) }.start()
        }
        let result = MeshwardCLI.Result(
            status: status, output: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "",
            error: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "")
        if command == "url" { server = result.output.trimmingCharacters(in: .whitespacesAndNewlines) }
        return result
    }

    private var outputPath: String { directory.appendingPathComponent("script.out").path }
    private var errorPath: String { directory.appendingPathComponent("script.err").path }

    /// Starts `scripts/test-postgres COMMAND` and returns its process id.
    private func spawn(_ command: String, stopMode: String) throws -> pid_t {
        // Nothing of this process's beyond standard input, output and error reaches the server.
        let closeInherited =
            "for fd in $(ls /proc/$$/fd); do if [ \"$fd\" -gt 2 ]; then eval \"exec $fd>&-\" 2>/dev/null; fi; done; "
        let line =
            closeInherited
            + "cd '\(MeshwardCLI.root.path)' && MESHWARD_TEST_PG_DIR='\(directory.path)' MESHWARD_TEST_PG_PORT=\(port) "
            + "MESHWARD_TEST_PG_DURABLE=1 MESHWARD_TEST_PG_STOP_MODE=\(stopMode) exec scripts/test-postgres \(command) >'\(outputPath)' 2>'\(errorPath)'"
        var pid: pid_t = 0
        let arguments = ["/bin/bash", "-c", line]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let spawned = posix_spawn(&pid, "/bin/bash", nil, nil, argv, environ)
        try #require(spawned == 0, "posix_spawn /bin/bash: \(spawned)")
        return pid
    }

    /// Waits for `pid` to end (blocking the calling thread) and returns its exit code, or 128 +
    /// the signal that ended it.
    private static func exitStatus(of pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    func start() async throws {
        let started = try await script("start")
        try #require(started.status == 0, "scripts/test-postgres start: \(started.error)")
        try await script("url")
    }

    /// Destroys the cluster, waiting for that on the thread that releases the last reference (a
    /// `deinit` cannot await).
    deinit {
        if let pid = try? spawn("destroy", stopMode: "immediate") { _ = Self.exitStatus(of: pid) }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// The database server stopped (killed, `pg_ctl stop -m immediate`) while a reconcile loop's
/// pass is half sent: the pass stops and says what failed and where, the Store holds nothing
/// half-written, the kernels hold nothing without a recorded generation, and once the server
/// is back the loop finishes the work cleanly.
@Suite("The database stopped mid-pass")
struct DatabaseOutageTests {
    static let pauseAfter = 6

    @Test(
        "a reconcile loop whose database stops mid-pass stops that pass, says so, and resumes cleanly when it is back",
        .enabled(if: TestDatabase.server != nil, TestDatabase.skipReason), .timeLimit(.minutes(10)))
    func databaseStoppedMidPass() async throws {
        let postgres = try PrivatePostgres()
        try await postgres.start()
        let database = try await TestDatabase.make(on: postgres.server)
        let cli = try MeshwardCLI(database: database)
        defer { cli.removeState() }
        let base = try CrashScenario(example: "three-tier.yaml")
        let original = try String(contentsOfFile: base.spec, encoding: .utf8)
        let spec = try MeshwardCLI.writeSpec(original, name: "three-tier.yaml")
        #expect(try await cli.run("apply", spec).status == 0)
        var fingerprints = FingerprintLedger()
        let baseline = try await CrashScenario(specFile: spec).record(cli, ledger: &fingerprints)

        let pauseFile = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-pause-\(UUID())")
        defer { try? FileManager.default.removeItem(at: pauseFile) }
        let loop = try BackgroundCommand(
            cli, ["reconcile", spec, "--interval", "2s"], executable: MeshwardCLI.faultyBinary,
            environment: [
                "MESHWARD_LOG_LEVEL": "notice",
                SimulatedPauseFault.variable: "\(Self.pauseAfter):\(pauseFile.path)",
            ])
        #expect(try await eventually { loop.logText.contains("leading: holds the lease") }, "\(loop.logText)")

        // A rotation of every key: the loop's next pass sends many operations; after the
        // sixth it is held while the server is killed.
        try LeaderTakeoverTests.rotated(original).write(toFile: spec, atomically: true, encoding: .utf8)
        try #require(
            try await eventually(seconds: 120) { FileManager.default.fileExists(atPath: pauseFile.path) },
            "the pass did not reach its operation \(Self.pauseAfter): \(loop.logText)")
        let stopped = try await postgres.script("stop", stopMode: "immediate")
        try #require(stopped.status == 0, "\(stopped.error)")
        try FileManager.default.removeItem(at: pauseFile)

        // The pass goes on sending the batch it holds, cannot record the answers, and stops,
        // saying what failed and on which database.
        let stoppedPass =
            "the journal could not be written, so the run stopped: state database \(database.url): "
            + "complete journal entries failed"
        #expect(
            try await eventually(seconds: 120) { loop.logText.contains(stoppedPass) },
            "the loop did not say its pass stopped: \(loop.logText)")
        #expect(loop.process.isRunning, "the loop exited: \(loop.logText)")
        // While the server is down, the next cycles say they cannot reach it, and send nothing.
        #expect(
            try await eventually(seconds: 120) {
                loop.logText.contains("cannot connect to 127.0.0.1:\(postgres.port)")
            },
            "\(loop.logText)")
        let fleetFile = cli.stateDirectory.appendingPathComponent("simulated-fleet.sqlite")
        let outageFleet = try SimulatedFleet.load(from: fleetFile).state
        let scenario = try CrashScenario(specFile: spec)
        try scenario.checkContinuity(cli, established: true, label: "the fleet while the database is down")

        // The server is back: the loop resumes and finishes the rotation.
        try await postgres.start()
        #expect(
            try await eventually(seconds: 180) { try await cli.run("plan", spec, "--detailed-exitcode").status == 0 },
            "the loop did not finish once the server was back: \(loop.logText)")
        #expect((try await LockTimeoutCLITests.lease(cli)?["holder"] as? String)?.hasSuffix("pid \(loop.pid)") == true)

        // Nothing half-written: the interrupted pass's journal entries are all still planned,
        // none completed (their completing transaction was rolled back as a whole).
        let store = try await scenario.openStore(cli)
        let journal = try await store.journal(limit: nil, node: nil)
        let interrupted = Set(journal.filter { $0.result == .planned }.map(\.plannedAt))
        #expect(interrupted.count == 1, "passes left planned: \(interrupted.count)")
        for entry in journal where interrupted.contains(entry.plannedAt) {
            #expect(entry.result == .planned && entry.appliedAt == nil, "\(entry.operation) \(entry.target)")
        }
        #expect(journal.filter { interrupted.contains($0.plannedAt) }.count >= Self.pauseAfter)

        // No kernel write without a recorded generation: every SA the kernels held during the
        // outage is a generation the Store holds, with its key.
        let spis = try await scenario.record(cli, ledger: &fingerprints, spis: baseline, label: "after the outage")
        for node in outageFleet.nodes.values {
            for sa in node.securityAssociations where sa.reqid == Reqid(scenario.intent.reqid) {
                guard let identity = spis.identity(of: sa.destination, spi: sa.spi.hex) else {
                    Issue.record("during the outage \(node.name) held spi \(sa.spi.hex), which the Store never issued")
                    continue
                }
                #expect(
                    fingerprints.identity(of: sa.key.fingerprint) == "\(identity) spi \(sa.spi.hex)",
                    "\(node.name) held spi \(sa.spi.hex) with a key that is not \(identity)'s")
            }
        }
        try await scenario.checkConverged(cli, label: "after the outage")
        try await scenario.checkJournal(cli, spis: spis, label: "after the outage")
        try scenario.checkContinuity(cli, established: true, label: "after the outage")

        loop.send(SIGTERM)
        #expect(try await loop.waitForExit() == 0, "\(loop.logText)")
        withExtendedLifetime(database) {}
    }
}
