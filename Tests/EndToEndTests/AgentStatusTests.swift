import Foundation
import Testing

/// `status` per node behind an agent: the address dialled, the certificate's expiry, the boot
/// ID and the last contact, live when the agent answers and as the last `apply` recorded them
/// in the Store when it does not (status is a separate process).
@Suite("Agent status", .serialized)
struct AgentStatusTests {
    @Test(
        "status shows each agent's address, the TLS 1.3 X25519MLKEM768 its connection negotiated, certificate expiry, boot ID and last contact, and the recorded ones (no TLS) for an agent that stopped"
    )
    func agentColumns() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-agent-status-\(UUID())")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: base) }
        // Credentials first (they do not depend on the port), then the agents on free ports.
        let draft = try AgentProcess.labSpec([7443, 7443])
        var agents: [AgentProcess] = []
        defer { for agent in agents { agent.terminate() } }
        for node in ["a", "b"] {
            let directory = base.appendingPathComponent("agent-\(node)").path
            let made = try await cli.run(["agent", "credentials", draft, "--node", node, "--out", directory])
            #expect(made.status == 0, "\(made.error)")
            agents.append(try await AgentProcess(directory: directory))
        }
        let path = try AgentProcess.labSpec(agents.map(\.port))
        let apply = try await cli.run("apply", path)
        #expect(apply.status == 0, "\(apply.output) \(apply.error)")

        let (live, document) = try await cli.json("status")
        #expect(live == 0)
        let nodes = document["nodes"] as? [[String: Any]] ?? []
        var recordedBoot: String?
        for (index, name) in ["a", "b"].enumerated() {
            let node = try #require(nodes.first { $0["name"] as? String == name }, "\(document)")
            let agent = try #require(node["agent"] as? [String: Any], "no agent for \(name): \(node)")
            #expect(agent["address"] as? String == "127.0.0.1:\(agents[index].port)")
            #expect(agent["live"] as? Bool == true)
            let boot = agent["boot_id"] as? String ?? ""
            #expect(!boot.isEmpty, "\(agent)")
            if name == "b" { recordedBoot = boot }
            let expires = try #require(agent["certificate_expires"] as? String, "\(agent)")
            let expiry = try #require(ISO8601DateFormatter().date(from: expires))
            // `agent credentials` issues for the spec's certificate lifetime, 7 days by default.
            #expect(expiry.timeIntervalSinceNow > 6 * 86_400 && expiry.timeIntervalSinceNow < 7 * 86_400 + 60)
            #expect(agent["last_contact"] is String)
            let tls = try #require(agent["tls"] as? [String: Any], "\(agent)")
            #expect(tls["protocol"] as? String == "TLSv1.3")
            #expect(tls["key_exchange"] as? String == "X25519MLKEM768")
        }
        let text = try await cli.run("status")
        #expect(
            text.output.contains("agent 127.0.0.1:\(agents[1].port), TLSv1.3 X25519MLKEM768, certificate expires "),
            "\(text.output)")

        // b's agent stops: status cannot reach it and shows what the apply recorded.
        await agents[1].stop()
        let (down, after) = try await cli.json("status")
        #expect(down == 1)
        let b = try #require((after["nodes"] as? [[String: Any]])?.first { $0["name"] as? String == "b" })
        #expect(b["reachable"] as? Bool == false)
        let agent = try #require(b["agent"] as? [String: Any], "\(b)")
        #expect(agent["live"] as? Bool == false)
        #expect(agent["address"] as? String == "127.0.0.1:\(agents[1].port)")
        #expect(agent["boot_id"] as? String == recordedBoot)
        #expect(agent["certificate_expires"] is String)
        #expect(agent["tls"] == nil, "a connection that was not made negotiated nothing: \(agent)")
        let contact = try #require(agent["last_contact"] as? String)
        let contacted = try #require(ISO8601DateFormatter().date(from: contact))
        #expect(contacted <= Date())
        let stoppedText = try await cli.run("status")
        #expect(stoppedText.output.contains("(recorded)"), "\(stoppedText.output)")
    }
}
