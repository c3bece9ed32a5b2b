import Foundation
import Testing

/// `meshward agent run --join-token-file` as a separate process, enrolled by `meshward apply`:
/// the host joins with a one-time token and its channels are protected in the same apply.
@Suite("Agent join by token", .serialized)
struct AgentJoinTests {
    @Test(
        "an agent started with a join token is shown waiting for enrollment by plan, enrolled and protected by apply on the same port, its token file deleted and the token spent"
    )
    func joinsByToken() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let base = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: base) }
        let draft = try AgentProcess.labSpec([7443, 7443])
        let directoryA = base.appendingPathComponent("agent-a").path
        let made = try await cli.run(["agent", "credentials", draft, "--node", "a", "--out", directoryA])
        try #require(made.status == 0, "\(made.error)")
        let (printed, tokenFile) = try await Self.tokenFile(cli: cli, draft: draft, base: base)
        let directoryB = base.appendingPathComponent("agent-b").path
        let a = try await AgentProcess(directory: directoryA)
        defer { a.terminate() }
        let b = try await AgentProcess(
            directory: directoryB,
            arguments: ["--join-token-file", tokenFile, "--node", "b", "--cluster", "lab"])
        defer { b.terminate() }
        #expect(b.errorText.contains("agent waiting for enrollment"), "\(b.errorText)")
        #expect(!b.errorText.contains(printed.output.split(separator: ".")[2]), "the secret was logged")
        let path = try AgentProcess.labSpec([a.port, b.port])

        let plan = try await cli.run("plan", path)
        #expect(plan.output.contains("node b is waiting for enrollment"), "\(plan.output) \(plan.error)")
        #expect(FileManager.default.fileExists(atPath: tokenFile), "plan enrolled the host")

        let apply = try await cli.run("apply", path)
        #expect(apply.status == 0, "\(apply.output) \(apply.error)")
        #expect(!FileManager.default.fileExists(atPath: tokenFile))
        for file in ["agent.pem", "agent.key", "ca.pem"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: directoryB + "/" + file)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600, "\(file)")
        }
        #expect(b.errorText.contains("enrolled; serving the node's kernel"), "\(b.errorText)")
        #expect(b.errorText.contains("agent listening"), "\(b.errorText)")

        let again = try await cli.run("plan", path)
        #expect(again.status == 0, "\(again.output) \(again.error)")
        #expect(!again.output.contains("waiting for enrollment"), "\(again.output)")
        let (live, document) = try await cli.json("status")
        #expect(live == 0, "\(document)")
        let nodes = document["nodes"] as? [[String: Any]] ?? []
        let node = try #require(nodes.first { $0["name"] as? String == "b" }, "\(document)")
        let agent = try #require(node["agent"] as? [String: Any], "\(node)")
        #expect(agent["live"] as? Bool == true)
        #expect(agent["certificate_expires"] is String, "\(agent)")
        let tokens = try await cli.run("agent", "tokens", path)
        let id = String(printed.output.split(separator: ".")[1])
        #expect(tokens.status == 0 && !tokens.output.contains(id), "\(tokens.output)")
    }

    @Test(
        "a host that joins with the boot guard list `agent boot-guard` printed has the guard policies in its kernel while it waits for enrollment",
        .enabled { await AgentLabAccess.isPermitted() }
    )
    func joinsWithItsBootGuard() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let base = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: base) }
        let draft = try AgentProcess.labSpec([7443, 7443])
        let list = try await cli.run("agent", "boot-guard", draft, "--node", "b")
        try #require(list.status == 0, "\(list.error)")
        let file = try JSONSerialization.jsonObject(with: Data(list.output.utf8)) as? [String: Any]
        let entries = try #require(file?["entries"] as? [[String: Any]], "\(list.output)")
        try #require(!entries.isEmpty, "\(list.output)")
        #expect(!list.output.contains("spi"), "the list names an SPI: \(list.output)")

        let directory = base.appendingPathComponent("agent-b").path
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        try #require(
            FileManager.default.createFile(
                atPath: directory + "/boot-guard.json", contents: Data(list.output.utf8),
                attributes: [.posixPermissions: 0o600]))
        let (_, tokenFile) = try await Self.tokenFile(cli: cli, draft: draft, base: base)
        let namespace = "mwjg-\(String(UInt32.random(in: 0...0xFFFF), radix: 16))"
        _ = try await AgentNamespaceTests.Lab.ip(["netns", "add", namespace])

        // Deleted afterwards whatever happens.
        do {
            let b = try await AgentProcess(
                directory: directory, simulated: false,
                arguments: ["--join-token-file", tokenFile, "--node", "b", "--cluster", "lab", "--netns", namespace])
            defer { b.terminate() }
            #expect(b.errorText.contains("agent waiting for enrollment"), "\(b.errorText)")
            #expect(b.errorText.contains("boot guard installed"), "\(b.errorText)")
            let policies = try await AgentNamespaceTests.Lab.ip(["-n", namespace, "xfrm", "policy", "list"])
            // One policy per unindented line; the control port's bypass (no template) is not a guard.
            let outbound = policies.components(separatedBy: "\nsrc ").filter {
                $0.contains("dir out") && $0.contains("tmpl")
            }
            #expect(outbound.count == entries.count, "\(policies)")
            #expect(
                outbound.allSatisfy {
                    $0.contains("198.18.0.2/32 dst 198.18.0.1/32") && $0.contains("proto esp reqid 19799")
                        && !$0.contains("level use")
                },
                "\(policies)")
            #expect(!policies.contains("spi 0x"), "a guard pins an SPI: \(policies)")
            #expect(FileManager.default.fileExists(atPath: tokenFile), "the token was used before any enrollment")
        } catch {
            _ = try? await AgentNamespaceTests.Lab.ip(["netns", "del", namespace])
            throw error
        }
        _ = try? await AgentNamespaceTests.Lab.ip(["netns", "del", namespace])
    }

    @Test("`agent boot-guard` lists nothing for a permissive fleet and refuses a node that is not an agent")
    func bootGuardListOfTheSpec() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let permissive = try MeshwardCLI.writeSpec(
            """
            version: 1
            cluster: lab
            defaults: { enforcement: permissive, endpoint: agent }
            nodes:
              - { name: a, addresses: [198.18.0.1] }
              - { name: b, addresses: [198.18.0.2] }
              - { name: s, addresses: [198.18.0.3], endpoint: sim }
            flows:
              - { name: ab, from: { name: a }, to: { name: b } }
              - { name: as, from: { name: a }, to: { name: s } }
            """)
        let none = try await cli.run("agent", "boot-guard", permissive, "--node", "a")
        #expect(none.status == 0, "\(none.error)")
        let file = try JSONSerialization.jsonObject(with: Data(none.output.utf8)) as? [String: Any]
        #expect((file?["entries"] as? [Any])?.isEmpty == true, "\(none.output)")
        let simulated = try await cli.run("agent", "boot-guard", permissive, "--node", "s")
        #expect(simulated.status == 1)
        #expect(simulated.error.contains("node s has endpoint 'sim', not an agent"), "\(simulated.error)")
        let unknown = try await cli.run("agent", "boot-guard", permissive, "--node", "z")
        #expect(unknown.status == 1)
        #expect(unknown.error.contains("z"), "\(unknown.error)")
    }

    /// A scratch directory of the test's own.
    static func scratch() throws -> URL {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-agent-join-\(UUID())")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        return base
    }

    /// `agent token` for node b, written 0600 into `base` as the token file: the command's result
    /// and the file's path.
    static func tokenFile(cli: MeshwardCLI, draft: String, base: URL) async throws -> (MeshwardCLI.Result, String) {
        let printed = try await cli.run("agent", "token", draft, "--node", "b")
        try #require(printed.status == 0, "\(printed.error)")
        let tokenFile = base.appendingPathComponent("b.token").path
        try #require(
            FileManager.default.createFile(
                atPath: tokenFile, contents: Data(printed.output.utf8), attributes: [.posixPermissions: 0o600]))
        return (printed, tokenFile)
    }
}
