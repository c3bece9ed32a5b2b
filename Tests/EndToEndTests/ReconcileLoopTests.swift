import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The controller loop as a long-running process: it converges, notices a changed spec and
/// SIGHUP, and exits cleanly on SIGTERM.
@Suite("Reconcile loop", .serialized)
struct ReconcileLoopTests {
    static let twoNodes = """
        version: 1
        cluster: loop
        defaults: { drain: 1s, cipher: aes-gcm-256 }
        nodes:
          - { name: a, addresses: [198.18.5.1] }
          - { name: b, addresses: [198.18.5.2] }
        flows:
          - { name: ab, from: { name: a }, to: { name: b } }

        """

    static let threeNodes =
        twoNodes.replacingOccurrences(
            of: "  - { name: b, addresses: [198.18.5.2] }\n",
            with: "  - { name: b, addresses: [198.18.5.2] }\n  - { name: c, addresses: [198.18.5.3] }\n")
        + "  - { name: bc, from: { name: b }, to: { name: c } }\n"

    @Test(
        "--interval reads the spec's durations: it refuses a repeated unit, a fraction and zero, saying why",
        arguments: [
            ("1h1h", "units must go from largest to smallest"), ("1.5h", "fractions are not supported"),
            ("0s", "longer than zero"), ("30", "add a unit"),
        ])
    func intervalSyntax(_ text: String, _ reason: String) async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.twoNodes)
        let result = try await cli.run("reconcile", spec, "--once", "--interval", text)
        #expect(result.status == 1)
        #expect(result.error.contains(reason), "\(result.error)")
        #expect(!FileManager.default.fileExists(atPath: cli.stateDirectory.path), "nothing ran")
    }

    @Test("reconcile --once converges and exits 0; a blocked cycle exits 1")
    func once() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.twoNodes)
        let result = try await cli.run("reconcile", spec, "--once")
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("converged"))
        #expect(try await cli.run("plan", spec, "--detailed-exitcode").status == 0)

        let blocked = try MeshwardCLI.writeSpec(
            Self.twoNodes.replacingOccurrences(
                of: "{ name: b, addresses: [198.18.5.2] }",
                with: "{ name: b, addresses: [198.18.5.2], endpoint: \"netns:meshward-absent-ns\" }"))
        #expect(try await cli.run("reconcile", blocked, "--once").status == 1)
    }

    @Test(
        "the loop keeps the lease, picks up an edited spec (even one that keeps its size and time), reloads on SIGHUP, stops on SIGTERM and gives the lease back"
    )
    func loop() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.twoNodes)
        let process = Process()
        process.executableURL = MeshwardCLI.binary
        process.arguments = ["reconcile", spec, "--interval", "1h", "--state-dir", cli.stateDirectory.path]
        process.environment = ProcessInfo.processInfo.environment.merging(["MESHWARD_LOG_LEVEL": "notice"]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        // A file, not a pipe: the log is read while the loop runs.
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-loop-\(UUID()).log")
        try Data().write(to: log)
        defer { try? FileManager.default.removeItem(at: log) }
        let logHandle = try FileHandle(forWritingTo: log)
        defer { try? logHandle.close() }
        process.standardError = logHandle
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        #expect(
            try await eventually(seconds: 30) { try await channelCount(cli) == 2 }, "the first cycle did not converge")

        // Between cycles the loop keeps the lease: an apply beside it is refused and names it.
        let beside = try await cli.run("apply", spec, "--lock-timeout", "0s")
        #expect(beside.status == 1)
        #expect(
            beside.error.contains("leased to '") && beside.error.contains("pid \(process.processIdentifier)'"),
            "\(beside.error)")

        // An edit to the spec file starts a cycle without waiting for the interval.
        try Self.threeNodes.write(toFile: spec, atomically: true, encoding: .utf8)
        let whole = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down) - 60)
        try FileManager.default.setAttributes([.modificationDate: whole], ofItemAtPath: spec)
        #expect(
            try await eventually(seconds: 30) { try await channelCount(cli) == 4 }, "the edited spec was not picked up")

        // An edit in place that keeps the file's size and modification time is noticed as well:
        // the loop watches the spec's directory (inotify), it does not compare fingerprints.
        try Self.threeNodes.replacingOccurrences(of: "aes-gcm-256", with: "aes-gcm-128")
            .write(toFile: spec, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: whole], ofItemAtPath: spec)
        #expect(
            try await eventually(seconds: 30) { try await ciphers(cli) == ["aes-gcm-128"] },
            "the in-place edit was not picked up")

        // SIGHUP starts a cycle at once, as the log says.
        kill(process.processIdentifier, SIGHUP)
        #expect(
            try await eventually(seconds: 30) {
                String(decoding: try Data(contentsOf: log), as: UTF8.self).contains("SIGHUP; reloading")
            },
            "SIGHUP did not start a cycle")

        kill(process.processIdentifier, SIGTERM)
        #expect(try await eventually(seconds: 20) { !process.isRunning }, "SIGTERM did not stop the loop")
        #expect(process.terminationStatus == 0)
        // Stopping gave the lease back: an apply now runs at once.
        let after = try await cli.run("apply", spec)
        #expect(after.status == 0, "\(after.error)")
    }

    private func channelCount(_ cli: MeshwardCLI) async throws -> Int {
        let (_, status) = try await cli.json("status")
        let channels = status["channels"] as? [[String: Any]] ?? []
        return channels.filter { $0["step"] as? String == "established" }.count
    }

    private func ciphers(_ cli: MeshwardCLI) async throws -> Set<String> {
        let (_, status) = try await cli.json("status")
        return Set((status["channels"] as? [[String: Any]] ?? []).compactMap { $0["cipher"] as? String })
    }
}
