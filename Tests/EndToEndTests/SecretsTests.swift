import Foundation
import Logging
import MeshwardCore
import Store
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Keys never leave the sealed store: not in any output, log line or file of the state directory,
/// and the state directory itself is private.
@Suite("Secrets", .serialized)
struct SecretsTests {
    /// Everything a command printed, labelled by the command.
    struct Capture {
        let label: String
        let bytes: Data
    }

    @Test(
        "no key appears in any output, log (text and json formats) or state file, through apply, rekey, plan, reconcile, status and history"
    )
    func keysNeverLeak() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = MeshwardCLI.example("three-tier.yaml")
        let trace = ["MESHWARD_LOG_LEVEL": "trace"]
        var captures: [Capture] = []
        func run(_ arguments: [String]) async throws -> MeshwardCLI.Result {
            let result = try await cli.run(arguments, environment: trace)
            let label = arguments.joined(separator: " ")
            captures.append(Capture(label: label + " (stdout)", bytes: Data(result.output.utf8)))
            captures.append(Capture(label: label + " (stderr)", bytes: Data(result.error.utf8)))
            return result
        }

        // Both log formats, at trace level: text for people, JSON lines for machines.
        for output in ["text", "json"] {
            let plan = ["plan", spec, "--detailed-exitcode", "--output", output, "--log-format", output, "--verbose"]
            #expect(try await run(plan).status == 2)
        }
        #expect(try await run(["apply", spec, "--verbose", "--log-format", "json"]).status == 0)
        var keys = try storedKeys(cli)
        #expect(
            try await run(["rekey", spec, "--all", "--output", "json", "--verbose", "--log-format", "text"]).status == 0
        )
        keys.formUnion(try storedKeys(cli))
        for output in ["text", "json"] {
            let logs = ["--log-format", output]
            for command in [["plan", spec], ["status"], ["history"], ["validate", spec]] {
                let result = try await run(command + ["--output", output, "--verbose"] + logs)
                #expect(result.status == 0, "\(command) --output \(output): \(result.error)")
            }
            let rekey = ["rekey", spec, "--channel", "web-1:app-1", "--no-wait", "--output", output, "--verbose"]
            #expect(try await run(rekey + logs).status == 0)
            let reconcile = ["reconcile", spec, "--once", "--output", output, "--verbose"]
            #expect(try await run(reconcile + logs + ["--metrics-address", "127.0.0.1:0"]).status == 0)
        }
        keys.formUnion(try storedKeys(cli))

        // A saved plan (plan --out) of a rekey is a file that leaves the state directory.
        let planFile = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-plan-\(UUID()).json")
        defer { try? FileManager.default.removeItem(at: planFile) }
        let rekeyed = try MeshwardCLI.writeSpec(
            try String(contentsOfFile: spec, encoding: .utf8).replacingOccurrences(
                of: "aes-gcm-256", with: "chacha20-poly1305"))
        #expect(try await run(["plan", rekeyed, "--out", planFile.path, "--verbose"]).status == 0)
        captures.append(Capture(label: "the saved plan file", bytes: try Data(contentsOf: planFile)))

        // 48 channels keyed by apply and again by rekey --all, and more for web-1 to app-1.
        #expect(keys.count >= 96, "too few keys found to make the search meaningful")
        #expect(captures.contains { $0.label.hasPrefix("apply") && $0.bytes.count > 1_000 }, "trace logs missing")
        for (format, marker) in [("json", #""level":"debug""#), ("text", "debug meshward: ")] {
            let logged = captures.filter {
                $0.label.contains("--log-format \(format)") && $0.label.hasSuffix("(stderr)")
                    && $0.bytes.range(of: Data(marker.utf8)) != nil
            }
            #expect(logged.count >= 5, "too few debug logs in the \(format) format to make the search meaningful")
        }
        let files = try stateFiles(cli)
        #expect(files.keys.contains("state.sqlite") && files.keys.contains("simulated-fleet.sqlite"))

        let masterKey = try #require(files["master.key"])
        #expect(masterKey.count == 32)
        let outputs = captures.map { ("the output of \($0.label)", $0.bytes) }
        let stateFiles = files.map { ($0.key, $0.value) }
        for finding in Self.findings(of: [UInt8](masterKey), in: outputs + stateFiles.filter { $0.0 != "master.key" }) {
            Issue.record("the master key appears as \(finding)")
        }
        for key in keys {
            for finding in Self.findings(of: key, in: outputs + stateFiles) {
                Issue.record("a key appears as \(finding)")
            }
        }
    }

    @Test(
        "no key appears in an agent's output, log (text and json formats) or directory, nor in the controller's (both formats), through apply and rekey"
    )
    func agentsNeverLeakKeys() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        func spec(_ endpoints: [String: String]) -> String {
            """
            version: 1
            cluster: secrets
            nodes:
              - { name: a, addresses: [198.18.0.1], endpoint: "\(endpoints["a"] ?? "agent")" }
              - { name: b, addresses: [198.18.0.2], endpoint: "\(endpoints["b"] ?? "agent")" }
            flows:
              - { name: ab, from: { name: a }, to: { name: b } }
            """
        }
        let draft = try MeshwardCLI.writeSpec(spec([:]))
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-agents-\(UUID())").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        var agents: [String: AgentProcess] = [:]
        defer { for agent in agents.values { agent.terminate() } }
        // One agent logs JSON lines, the other text.
        let formats = ["a": "json", "b": "text"]
        for node in ["a", "b"] {
            let made = try await cli.run(["agent", "credentials", draft, "--node", node, "--out", base + "/" + node])
            try #require(made.status == 0, "\(made.error)")
            agents[node] = try await AgentProcess(
                directory: base + "/" + node, arguments: ["--log-format", formats[node] ?? "text", "--verbose"])
        }
        let endpoints = agents.mapValues { "agent:127.0.0.1:\($0.port)" }
        let fleet = try MeshwardCLI.writeSpec(spec(endpoints))
        let trace = ["MESHWARD_LOG_LEVEL": "trace"]
        var captures: [(String, Data)] = []
        var controllerLogs: [String: String] = [:]
        for (format, commands) in [
            ("json", [["apply", fleet], ["rekey", fleet, "--all"], ["status"], ["plan", fleet]]),
            ("text", [["rekey", fleet, "--all"], ["status"], ["plan", fleet]]),
        ] {
            for command in commands {
                let result = try await cli.run(command + ["--verbose", "--log-format", format], environment: trace)
                #expect(result.status == 0, "\(command) --log-format \(format): \(result.error)")
                captures.append(
                    ("the output of \(command) --log-format \(format)", Data((result.output + result.error).utf8)))
                controllerLogs[format, default: ""] += result.error
            }
        }
        // Each format really logged at debug level, so the search covers what it writes.
        #expect(
            controllerLogs["json"]?.contains(#""level":"debug""#) == true, "no debug line in the controller's JSON logs"
        )
        #expect(
            controllerLogs["text"]?.contains("debug meshward: ") == true, "no debug line in the controller's text logs")
        let ready = try await MeshwardCLI.capture(
            MeshwardCLI.binary, ["agent", "wait-ready", "--agent-dir", base + "/a", "--timeout", "10s"])
        #expect(ready.status == 0, "wait-ready: \(ready.error)")
        let keys = try storedKeys(cli)
        #expect(keys.count >= 2, "too few keys found to make the search meaningful")
        for agent in agents.values { await agent.stop() }
        for (node, agent) in agents {
            #expect(agent.errorText.contains("applied a batch"), "agent \(node) logged no batch")
            let marker = formats[node] == "json" ? #""message":"applied a batch""# : "info meshward: applied a batch"
            #expect(agent.errorText.contains(marker), "agent \(node) did not log in \(formats[node] ?? "")")
            captures.append(("the output of agent \(node)", agent.output))
            for file in try FileManager.default.contentsOfDirectory(atPath: agent.directory) {
                let path = agent.directory + "/" + file
                captures.append(("\(path)", try Data(contentsOf: URL(fileURLWithPath: path))))
                #expect(try Self.permissions(path) == 0o600, "\(path)")
            }
        }
        captures += try stateFiles(cli).map { ($0.key, $0.value) }
        for key in keys {
            for finding in Self.findings(of: key, in: captures) {
                Issue.record("a key appears as \(finding)")
            }
        }
    }

    @Test("the search finds a planted key in each encoding, so the leak test can fail")
    func searchFindsPlantedKeys() throws {
        let key = try KeyMaterial.random(count: 36).bytes
        let forms = Self.encodings(of: key)
        #expect(forms.count == 6)
        for (form, bytes) in forms {
            var planted = Data("key=".utf8)
            planted.append(bytes)
            planted.append(Data(" end\n".utf8))
            let findings = Self.findings(of: key, in: [("clean", Data("nothing here\n".utf8)), ("planted", planted)])
            #expect(findings.contains("\(form) in planted"), "\(form): \(findings)")
            #expect(!findings.contains { $0.hasSuffix("in clean") })
        }
    }

    @Test("the master key and the database are 0600 in a 0700 directory")
    func stateFilesArePrivate() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", MeshwardCLI.example("minimal.yaml")).status == 0)
        let directory = cli.stateDirectory.path
        #expect(try Self.permissions(directory) == 0o700)
        let required = ["master.key", "state.sqlite", "simulated-fleet.sqlite"]
        let companions =
            ["state.sqlite-wal", "state.sqlite-shm"]
            + ["-journal", "-wal", "-shm"].map { "simulated-fleet.sqlite" + $0 }
        for name in required + companions {
            let path = directory + "/" + name
            guard FileManager.default.fileExists(atPath: path) else {
                #expect(!required.contains(name), "\(name) is missing")
                continue
            }
            #expect(try Self.permissions(path) == 0o600, "\(name)")
        }
    }

    @Test("a state directory or key file that others can read is refused, with the chmod that fixes it")
    func loosePermissionsRefused() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = MeshwardCLI.example("minimal.yaml")
        #expect(try await cli.run("apply", spec).status == 0)
        let directory = cli.stateDirectory.path

        for (path, mode, fix) in [
            (directory, mode_t(0o750), "chmod 700 \(directory)"),
            (directory, mode_t(0o705), "chmod 700 \(directory)"),
            (directory + "/master.key", mode_t(0o644), "chmod 600 \(directory)/master.key"),
            (directory + "/state.sqlite", mode_t(0o640), "chmod 600 \(directory)/state.sqlite"),
        ] {
            let original = try Self.permissions(path)
            #expect(chmod(path, mode) == 0)
            for command in [["status"], ["apply", spec]] {
                let result = try await cli.run(command)
                #expect(result.status == 1, "\(command) with \(path) at \(String(mode, radix: 8))")
                #expect(result.error.contains(fix), "\(command): \(result.error)")
                #expect(result.error.contains("lets other users read or change it"), "\(result.error)")
            }
            #expect(try Self.permissions(path) == mode, "the refusal repaired the mode instead of reporting it")
            #expect(chmod(path, original) == 0)
        }
        #expect(try await cli.run("status").status == 0, "the state directory does not work again once fixed")
    }

    // MARK: Helpers

    /// Every key of every generation the store holds.
    private func storedKeys(_ cli: MeshwardCLI) throws -> Set<[UInt8]> {
        let store = try StateStore.open(
            directory: cli.stateDirectory.path,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let generations = try store.loadChannels().values.flatMap(\.generations)
        return Set(generations.map(\.key.bytes))
    }

    /// Every file of the state directory, by name, read before the store is opened again.
    private func stateFiles(_ cli: MeshwardCLI) throws -> [String: Data] {
        let directory = cli.stateDirectory.path
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
        }
        return files
    }

    /// `<encoding> in <source>` for every encoding of `key` found in one of `sources`.
    static func findings(of key: [UInt8], in sources: [(String, Data)]) -> [String] {
        let forms = encodings(of: key)
        return sources.flatMap { name, contents in
            forms.filter { contents.range(of: $0.1) != nil }.map { "\($0.0) in \(name)" }
        }
    }

    /// The ways a key could be written out: raw, hex in both cases, and base64 in its variants.
    static func encodings(of key: [UInt8]) -> [(String, Data)] {
        let hex = key.map { String(format: "%02x", $0) }.joined()
        let base64 = Data(key).base64EncodedString()
        let unpadded = base64.trimmingCharacters(in: CharacterSet(charactersIn: "="))
        let url = unpadded.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        return [
            ("raw bytes", Data(key)), ("lowercase hex", Data(hex.utf8)), ("uppercase hex", Data(hex.uppercased().utf8)),
            ("base64", Data(base64.utf8)), ("unpadded base64", Data(unpadded.utf8)), ("base64url", Data(url.utf8)),
        ]
    }

    static func permissions(_ path: String) throws -> mode_t {
        var info = stat()
        guard stat(path, &info) == 0 else { throw CocoaError(.fileReadNoSuchFile) }
        return info.st_mode & 0o777
    }
}
