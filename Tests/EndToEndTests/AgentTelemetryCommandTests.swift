import Foundation
import MeshwardTestSupport
import Telemetry
import Testing

/// `meshward agent run --metrics-address` as an operator meets it: a process, scraped over HTTP.
@Suite("Agent telemetry", .serialized)
struct AgentTelemetryCommandTests {
    @Test(
        "agent run --metrics-address serves /healthz, and /readyz only once the controller marked it; /metrics counts the applies and holds the epoch its directory recorded"
    )
    func agentServesMetricsAndReadiness() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        func spec(_ endpoints: [String: String]) -> String {
            """
            version: 1
            cluster: telemetry
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
        let agents = try await AgentProcess.start(
            ["a", "b"], draft: draft, cli: cli, base: base,
            arguments: ["--metrics-address", "127.0.0.1:0", "--log-format", "json"])
        defer { for agent in agents.values { agent.terminate() } }
        let a = try #require(agents["a"])
        let metrics = try #require(a.metricsPort, "no serving metrics line in: \(a.errorText)")
        #expect(try HTTPProbe.get(port: metrics, path: "/healthz").status == 200)
        let before = try HTTPProbe.get(port: metrics, path: "/readyz")
        #expect(before.status == 503, "\(before.body)")
        #expect(Exposition(try HTTPProbe.get(port: metrics, path: "/metrics").body).value("meshward_agent_ready") == 0)

        let fleet = try MeshwardCLI.writeSpec(spec(agents.mapValues { "agent:127.0.0.1:\($0.port)" }))
        let applied = try await cli.run(["apply", fleet])
        #expect(applied.status == 0, "\(applied.error)")

        let after = try HTTPProbe.get(port: metrics, path: "/readyz")
        #expect(after.status == 200, "\(after.body)")
        let scrape = Exposition(try HTTPProbe.get(port: metrics, path: "/metrics").body)
        #expect(scrape.value("meshward_agent_ready") == 1)
        #expect((scrape.value("meshward_agent_requests_total", ["kind": "apply", "result": "ok"]) ?? 0) >= 1)
        #expect((scrape.value("meshward_agent_requests_total", ["kind": "observe", "result": "ok"]) ?? 0) >= 1)
        #expect(scrape.value("meshward_agent_requests_total", ["kind": "mark-ready", "result": "ok"]) == 1)
        #expect(scrape.value("meshward_agent_epochs_refused_total") == 0)
        let recorded = try String(contentsOfFile: base + "/a/epoch", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(scrape.value("meshward_agent_highest_epoch") == Double(recorded), "the epoch file holds \(recorded)")
        #expect(scrape.all("meshward_agent_certificate_expiry_timestamp_seconds").count == 1)
    }

    @Test(
        "an agent run --metrics-address whose port is in use ends the agent before it listens, exit 1, with the reason")
    func portInUse() async throws {
        let holder = try await TelemetryServer.bind(
            ListenAddress(host: "127.0.0.1", port: 0), routes: ControllerTelemetry().routes)
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let draft = try MeshwardCLI.writeSpec(
            """
            version: 1
            cluster: telemetry
            nodes:
              - { name: a, addresses: [198.18.0.1], endpoint: agent }
            """)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-agent-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let made = try await cli.run(["agent", "credentials", draft, "--node", "a", "--out", directory])
        try #require(made.status == 0, "\(made.error)")
        let result = try await MeshwardCLI.capture(
            MeshwardCLI.binary,
            [
                "agent", "run", "--agent-dir", directory, "--listen", "127.0.0.1:0", "--simulated",
                "--metrics-address", "\(holder.address)",
            ], environment: ProcessInfo.processInfo.environment.merging(["MESHWARD_LOG_LEVEL": "info"]) { $1 })
        await holder.close()
        #expect(result.status == 1)
        #expect(
            result.error.contains("cannot serve metrics on \(holder.address): the port is already in use"),
            "\(result.error)")
        // At level info the agent logs `agent listening` once it serves: it never did.
        #expect(!result.error.contains("agent listening"), "the agent served before its metrics failed")
    }

    @Test("a malformed agent run --metrics-address is a usage error naming the value, exit 1")
    func badAddress() async throws {
        let result = try await MeshwardCLI.capture(
            MeshwardCLI.binary, ["agent", "run", "--agent-dir", "/nonexistent", "--metrics-address", "9465"])
        #expect(result.status == 1)
        #expect(result.error.contains("'9465' is not HOST:PORT"), "\(result.error)")
    }
}
