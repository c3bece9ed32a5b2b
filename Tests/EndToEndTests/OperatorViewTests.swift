import Foundation
import KernelSimulator
import Testing

/// What an operator reads from `plan` and `status` on the simulated fleet: every change the
/// spec makes shows, a node filter reads what it needs, and a lost or loosened state
/// directory is said out loud.
@Suite("Operator view", .serialized)
struct OperatorViewTests {
    static let threeNodes = """
        version: 1
        cluster: view
        defaults: { drain: 1s, rekey: { every: 24h } }
        nodes:
          - { name: alpha, addresses: [198.18.6.1] }
          - { name: beta, addresses: [198.18.6.2] }
          - { name: delta, addresses: [198.18.6.3] }
        flows:
          - { name: ab, from: { name: alpha }, to: { name: beta }, ports: [tcp/8080] }
          - { name: bd, from: { name: beta }, to: { name: delta } }

        """

    @Test("status --node reads the peers of the node's channels, so a healthy fleet shows no drift")
    func statusOfOneNode() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try MeshwardCLI.writeSpec(Self.threeNodes)).status == 0)

        let (status, document) = try await cli.json("status", "--node", "alpha")
        #expect(status == 0, "\(document)")
        let channels = document["channels"] as? [[String: Any]] ?? []
        #expect(channels.count == 2, "alpha has two channels (to and from beta): \(channels)")
        #expect(channels.allSatisfy { $0["drift"] as? Bool == false }, "\(channels)")
        let nodes = (document["nodes"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(nodes == ["alpha"], "only the named node is listed")

        let text = try await cli.run("status", "--node", "beta")
        #expect(text.status == 0, "\(text.output)\(text.error)")
        #expect(!text.output.contains("DRIFT"), "\(text.output)")
    }

    @Test("status --node with a node the fleet does not have fails and names the known nodes")
    func statusOfUnknownNode() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try MeshwardCLI.writeSpec(Self.threeNodes)).status == 0)
        let result = try await cli.run("status", "--node", "gamma")
        #expect(result.status == 1)
        #expect(
            result.error.contains("no node 'gamma' in the fleet; known nodes: alpha, beta, delta"), "\(result.error)")
        #expect(result.output.isEmpty, "\(result.output)")
    }

    @Test("a changed rekey.every is a change for plan --detailed-exitcode, with the setting shown")
    func changedRekeyIntervalIsAChange() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try MeshwardCLI.writeSpec(Self.threeNodes)).status == 0)
        let hourly = try MeshwardCLI.writeSpec(
            Self.threeNodes.replacingOccurrences(of: "every: 24h", with: "every: 1h"))

        let text = try await cli.run("plan", hourly, "--detailed-exitcode")
        #expect(text.status == 2, "\(text.output)\(text.error)")
        #expect(text.output.contains("rekey.every 24h → 1h; next rekeys move earlier"), "\(text.output)")
        #expect(!text.output.contains("no changes"), "\(text.output)")

        let (status, document) = try await cli.json("plan", hourly, "--detailed-exitcode")
        #expect(status == 2)
        #expect(document["changes"] as? Bool == true)
        #expect(document["revision_changed"] as? Bool == true)
        let changed = document["settings_changed"] as? [[String: Any]] ?? []
        #expect(changed.count == 1, "\(changed)")
        #expect(changed.first?["setting"] as? String == "rekey.every")
        #expect(changed.first?["from"] as? String == "24h")
        #expect(changed.first?["to"] as? String == "1h")

        // Once applied, the same spec is no change.
        #expect(try await cli.run("apply", hourly).status == 0)
        #expect(try await cli.run("plan", hourly, "--detailed-exitcode").status == 0)
    }

    @Test("a port added to a flow counts its channels as to update, not as nothing")
    func addedPortIsAnUpdate() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try MeshwardCLI.writeSpec(Self.threeNodes)).status == 0)
        let wider = try MeshwardCLI.writeSpec(
            Self.threeNodes.replacingOccurrences(of: "ports: [tcp/8080]", with: "ports: [tcp/8080, tcp/9090]"))

        let (status, document) = try await cli.json("plan", wider, "--detailed-exitcode")
        #expect(status == 2)
        let summary = document["summary"] as? [String: Any] ?? [:]
        #expect(summary["channels_created"] as? Int == 0)
        #expect(summary["channels_rekeyed"] as? Int == 0)
        #expect(summary["channels_updated"] as? Int == 2, "\(summary)")
        #expect(summary["channels_removed"] as? Int == 0)
        #expect(
            (document["updated_channels"] as? [String]) == ["alpha->beta/ipv4", "beta->alpha/ipv4"],
            "\(document["updated_channels"] ?? "none")")

        let text = try await cli.run("plan", wider)
        #expect(text.output.contains("0 channels to create, 0 to rekey, 2 to update, 0 to remove"), "\(text.output)")
    }

    @Test("an empty Store beside kernels holding Meshward's objects is a warning, and apply needs --force")
    func lostStore() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.threeNodes)
        #expect(try await cli.run("apply", spec).status == 0)
        let database = cli.stateDirectory.appendingPathComponent("state.sqlite")
        for companion in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database.path + companion) }
        try FileHandle(forWritingTo: database).truncate(atOffset: 0)

        let status = try await cli.run("status")
        #expect(status.status == 1, "\(status.output)")
        #expect(status.error.contains("holds no channel, but the kernels of 3 nodes hold"), "\(status.error)")

        let plan = try await cli.run("plan", spec)
        #expect(plan.error.contains("warning: the Store in"), "\(plan.error)")
        let (_, planDocument) = try await cli.json("plan", spec)
        #expect((planDocument["warnings"] as? [String])?.count == 1)

        let refused = try await cli.run("apply", spec)
        #expect(refused.status == 1)
        #expect(refused.error.contains("meshward apply --force"), "\(refused.error)")
        #expect(refused.error.contains("Restore state.sqlite from backup"), "\(refused.error)")
        let (_, history) = try await cli.json("history")
        #expect((history["revisions"] as? [Any])?.isEmpty == true, "the refused apply recorded a revision")

        let forced = try await cli.run("apply", "--force", spec)
        #expect(forced.status == 0, "\(forced.error)")
        #expect(try await cli.run("status").status == 0)
    }

    @Test("a simulated-fleet.sqlite that others may read is refused with the chmod that fixes it")
    func looseSimulatedFleetFile() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.threeNodes)
        #expect(try await cli.run("apply", spec).status == 0)
        let file = cli.stateDirectory.appendingPathComponent("simulated-fleet.sqlite").path
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
        for arguments in [["status"], ["plan", spec], ["apply", spec]] {
            let result = try await cli.run(arguments)
            #expect(result.status == 1, "\(arguments)")
            #expect(result.error.contains("has mode 644"), "\(arguments): \(result.error)")
            #expect(result.error.contains("run 'chmod 600 \(file)'"), "\(arguments): \(result.error)")
        }
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        #expect((attributes[.posixPermissions] as? Int) == 0o644, "the file was rewritten instead of refused")
    }

    @Test("a state directory of an earlier version, with simulated-fleet.json, is migrated by the first command")
    func migratesSimulatedFleetJSON() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.threeNodes)
        #expect(try await cli.run("apply", spec).status == 0)
        let file = cli.stateDirectory.appendingPathComponent("simulated-fleet.sqlite")
        let legacy = cli.stateDirectory.appendingPathComponent("simulated-fleet.json")
        let fleet = try SimulatedFleet.load(from: file).state
        #expect(fleet.nodes.values.contains { !$0.securityAssociations.isEmpty })
        // What an earlier Meshward left: the same kernels as one JSON document, no SQLite file.
        #expect(
            FileManager.default.createFile(
                atPath: legacy.path, contents: try JSONEncoder().encode(fleet), attributes: [.posixPermissions: 0o600]))
        try FileManager.default.removeItem(at: file)

        let after = try await cli.run("status")
        #expect(after.status == 0, "\(after.error)")
        // Checked before this process loads the file itself (which would migrate it too).
        #expect(FileManager.default.fileExists(atPath: file.path), "status did not write the SQLite file")
        #expect(!FileManager.default.fileExists(atPath: legacy.path))
        #expect(FileManager.default.fileExists(atPath: legacy.path + ".migrated"))
        #expect(try SimulatedFleet.load(from: file).state == fleet)
        #expect(try await cli.run("plan", spec, "--detailed-exitcode").status == 0, "the migrated kernels converged")
    }

    @Test("a spec path holding a bidirectional override is escaped in the history")
    func escapedHistory() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.threeNodes, name: "fleet\u{202E}lmay.yaml")
        #expect(try await cli.run("apply", spec).status == 0)
        let history = try await cli.run("history")
        #expect(history.status == 0)
        #expect(!history.output.unicodeScalars.contains("\u{202E}"), "printed raw: \(history.output)")
        #expect(history.output.contains("fleet\\u{202E}lmay.yaml"), "\(history.output)")
    }

    @Test("a cluster name with a bidirectional override is refused with its place in the spec")
    func bidirectionalClusterRefused() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(
            Self.threeNodes.replacingOccurrences(of: "cluster: view", with: "cluster: \"view\\u202eRTL\""))
        let result = try await cli.run("apply", spec)
        #expect(result.status == 1)
        #expect(result.error.contains("\(spec):2:10: 'cluster' contains U+202E"), "\(result.error)")
        #expect(!result.error.unicodeScalars.contains("\u{202E}"))
    }

    @Test("validate escapes hidden characters that a diagnostic quotes from the spec")
    func validateEscapesQuotedText() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec("version: 1\ncluster: x\n\"no\\u202edes\": []\n")
        let result = try await cli.run("validate", spec)
        #expect(result.status == 1)
        #expect(result.error.contains("unknown key 'no\\u{202E}des'"), "\(result.error)")
        #expect(!result.error.unicodeScalars.contains("\u{202E}"), "printed raw")
    }
}
