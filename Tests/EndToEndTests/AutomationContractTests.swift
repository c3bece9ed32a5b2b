import Foundation
import MeshwardTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What a pipeline relies on: exit codes 0/2/1 for every failure including usage errors, a
/// JSON document on standard output whenever `--output json` is asked for, output that
/// arrives as it is made, and a history that says which command made each revision.
@Suite("Automation contract", .serialized)
struct AutomationContractTests {
    static let spec = """
        version: 1
        cluster: auto
        defaults: { drain: 1s }
        nodes:
          - { name: a, addresses: [198.18.7.1] }
          - { name: b, addresses: [198.18.7.2] }
        flows:
          - { name: ab, from: { name: a }, to: { name: b } }

        """

    @Test(
        "usage errors exit 1, as every other failure does",
        arguments: [
            ["plan", "--no-such-flag"], ["history", "--limit", "many"], ["rekey", "x.yaml"], ["frobnicate"],
            ["status", "--output", "yaml"],
        ])
    func usageErrorsExitOne(_ arguments: [String]) async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let result = try await cli.run(arguments)
        #expect(result.status == 1, "\(arguments): \(result.error)")
        #expect(result.error.contains("Error:") || result.error.contains("error:"), "\(result.error)")
    }

    @Test("--help still exits 0")
    func helpExitsZero() async throws {
        let cli = try MeshwardCLI()
        let result = try await cli.run("plan", "--help")
        #expect(result.status == 0)
        #expect(result.output.contains("--detailed-exitcode"))
    }

    @Test("history --limit 0 and --limit -1 say what --limit takes")
    func historyLimit() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try MeshwardCLI.writeSpec(Self.spec)).status == 0)
        for limit in ["0", "-1"] {
            let result = try await cli.run("history", "--limit", limit)
            #expect(result.status == 1, "--limit \(limit)")
            #expect(
                result.error.contains("--limit takes a number of revisions, 1 or more, not \(limit)"),
                "--limit \(limit): \(result.error)")
            #expect(!result.output.contains("no revisions applied yet"))
        }
        let (status, document) = try await cli.json("history", "--limit", "1")
        #expect(status == 0)
        #expect((document["revisions"] as? [Any])?.count == 1)
    }

    @Test("history records which command made each revision")
    func historyRecordsCommand() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.spec)
        #expect(try await cli.run("apply", spec).status == 0)
        #expect(try await cli.run("rekey", spec, "--node", "a").status == 0)
        #expect(try await cli.run("rekey", spec, "--channel", "b:a").status == 0)
        let changed = try MeshwardCLI.writeSpec(Self.spec.replacingOccurrences(of: "drain: 1s", with: "drain: 2s"))
        #expect(try await cli.run("reconcile", changed, "--once").status == 0)

        let (_, document) = try await cli.json("history")
        let commands = (document["revisions"] as? [[String: Any]] ?? []).map { $0["command"] as? String }
        #expect(commands == ["reconcile", "rekey --channel b:a", "rekey --node a", "apply"], "\(commands)")
        let text = try await cli.run("history")
        #expect(text.output.contains("  rekey --node a  "), "\(text.output)")
    }

    @Test("with --output json an invalid spec prints a located JSON error document on standard output")
    func jsonErrorForInvalidSpec() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let path = try MeshwardCLI.writeSpec(
            "version: 1\ncluster: x\nnodes:\n  - name: a\n    adresses: [198.18.0.1]\n")
        for command in ["plan", "apply"] {
            let (status, document) = try await cli.json(command, path)
            #expect(status == 1)
            let error = document["error"] as? [String: Any] ?? [:]
            // The first error in file order locates the document; every diagnostic is listed.
            #expect(
                (error["message"] as? String)?.contains("node 'a' needs 'addresses'") == true, "\(command): \(document)"
            )
            #expect(error["file"] as? String == path)
            #expect(error["line"] as? Int == 4)
            #expect(error["column"] as? Int == 5)
            let messages = (error["diagnostics"] as? [[String: Any]] ?? []).compactMap { $0["message"] as? String }
            #expect(messages.contains { $0.contains("unknown key 'adresses'") }, "\(messages)")
        }
    }

    @Test(
        "with --output json every failure prints an error document on standard output",
        arguments: [["status"], ["history"], ["plan", "--bogus"], ["rekey", "missing.yaml", "--all"]])
    func jsonErrorForOtherFailures(_ arguments: [String]) async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let (status, document) = try await cli.json(arguments)
        #expect(status == 1, "\(arguments)")
        let error = document["error"] as? [String: Any] ?? [:]
        #expect((error["message"] as? String)?.isEmpty == false, "\(arguments): \(document)")
    }

    @Test("reconcile writes each cycle as it ends, one JSON document per line with a timestamp")
    func reconcileStreamsJSONLines() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.spec)
        let capture = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-jsonl-\(UUID())")
        _ = FileManager.default.createFile(atPath: capture.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: capture) }
        let output = try FileHandle(forWritingTo: capture)
        defer { try? output.close() }

        let process = Process()
        process.executableURL = MeshwardCLI.binary
        process.arguments = [
            "reconcile", spec, "--interval", "1h", "--output", "json", "--state-dir", cli.stateDirectory.path,
        ]
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let exit = try ProcessExit(launching: process)
        defer { if process.isRunning { process.terminate() } }

        // Standard output is a file: before the first cycle is flushed it holds 0 bytes.
        _ = try await eventually(seconds: 30) {
            String(decoding: (try? Data(contentsOf: capture)) ?? Data(), as: UTF8.self).hasSuffix("\n")
        }
        let text = String(decoding: (try? Data(contentsOf: capture)) ?? Data(), as: UTF8.self)
        #expect(process.isRunning, "the loop exited")
        let lines = text.split(separator: "\n")
        #expect(lines.count == 1, "expected one line for one cycle while the loop still runs: \(text)")
        let document = try JSONSerialization.jsonObject(with: Data((lines.first ?? "").utf8)) as? [String: Any] ?? [:]
        #expect(document["outcome"] as? String == "converged", "\(document)")
        let timestamp = document["timestamp"] as? String ?? ""
        #expect((try? Date(timestamp, strategy: .iso8601)) != nil, "timestamp '\(timestamp)'")

        kill(process.processIdentifier, SIGTERM)
        _ = await exit.status()
    }

    @Test(
        "a state directory this user cannot read is permission denied, not an empty state",
        arguments: [["status"], ["history"], ["plan", "SPEC"]])
    func unreadableStateDirectory(_ arguments: [String]) async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.spec)
        try FileManager.default.setAttributes(
            [.posixPermissions: 0o755], ofItemAtPath: URL(fileURLWithPath: spec).deletingLastPathComponent().path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: spec)
        #expect(try await cli.run("apply", spec).status == 0)
        let command = arguments.map { $0 == "SPEC" ? spec : $0 }

        let result: MeshwardCLI.Result
        if getuid() == 0 {
            // Root reads every directory: run the command as nobody, who cannot enter the 0700
            // state directory root created.
            result = try await Self.runAsNobody(command + ["--state-dir", cli.stateDirectory.path])
        } else {
            try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: cli.stateDirectory.path)
            defer {
                try? FileManager.default.setAttributes(
                    [.posixPermissions: 0o700], ofItemAtPath: cli.stateDirectory.path)
            }
            result = try await cli.run(command)
        }
        #expect(result.status == 1, "\(command): \(result.output) \(result.error)")
        #expect(
            result.error.contains("permission denied: cannot read \(cli.stateDirectory.path)"),
            "\(command): \(result.error)")
        #expect(!result.error.contains("run `meshward apply SPEC` first"))
        #expect(!result.output.contains("to create"), "plan planned from empty: \(result.output)")
    }

    /// Runs the binary as `nobody` through `setpriv` (util-linux).
    static func runAsNobody(_ arguments: [String]) async throws -> MeshwardCLI.Result {
        let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let tool = try #require(setpriv, "setpriv is needed to run as nobody")
        return try await MeshwardCLI.capture(
            URL(fileURLWithPath: tool),
            ["--reuid=65534", "--regid=65534", "--clear-groups", MeshwardCLI.binary.path] + arguments,
            directory: URL(fileURLWithPath: "/"))
    }
}

extension MeshwardCLI {
    /// `json(_:)` for arguments built at run time.
    func json(_ arguments: [String]) async throws -> (Int32, [String: Any]) {
        let result = try await run(arguments + ["--output", "json"])
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] ?? [:]
        return (result.status, object)
    }
}
