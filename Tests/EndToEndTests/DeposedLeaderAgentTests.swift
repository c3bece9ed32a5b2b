import Foundation
import MeshwardTestKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The agents' epoch fence across processes: two `meshward reconcile` processes standing for
/// controllers on two hosts, two `meshward agent run --simulated` processes. The leader stops
/// (SIGSTOP, the test kit's `AgentFreezeFault`) right before an apply leaves for an agent, after
/// every check it makes; its lease lapses, the other controller takes it and finishes the work
/// through the agents; when the stopped leader continues, its request goes out under its old
/// epoch and the agent refuses it, naming both epochs. Nothing the deposed leader sent changed a
/// kernel.
@Suite("Agents refuse a deposed leader, across processes", .serialized)
struct DeposedLeaderAgentTests {
    static func spec(cipher: String, endpoints: [String: String]) -> String {
        """
        version: 1
        cluster: fence
        defaults:
          cipher: \(cipher)
          drain: 0s
        nodes:
          - { name: a, addresses: [198.18.0.1], endpoint: "\(endpoints["a"] ?? "agent")" }
          - { name: b, addresses: [198.18.0.2], endpoint: "\(endpoints["b"] ?? "agent")" }
        flows:
          - { name: ab, from: { name: a }, to: { name: b } }
        """
    }

    /// Whether process `pid` is stopped (state `T` in `/proc/PID/stat`).
    static func isStopped(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first == "T"
    }

    @Test(
        "a leader stopped right before an apply and deposed meanwhile has that apply refused by the agent, which names both epochs; the fleet keeps what the new leader made",
        .timeLimit(.minutes(10)), arguments: StoreKind.available)
    func deposedLeadersApplyIsRefused(store: StoreKind) async throws {
        let database = try await store.makeDatabase()
        let cli = try MeshwardCLI(database: database)
        defer { cli.removeState() }
        let draft = try MeshwardCLI.writeSpec(Self.spec(cipher: "aes-gcm-256", endpoints: [:]))
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-agents-\(UUID())").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let agents = try await AgentProcess.start(["a", "b"], draft: draft, cli: cli, base: base)
        defer { for agent in agents.values { agent.terminate() } }
        let endpoints = agents.mapValues { "agent:127.0.0.1:\($0.port)" }
        let fleet = try MeshwardCLI.writeSpec(Self.spec(cipher: "aes-gcm-256", endpoints: endpoints))
        let applied = try await cli.run(["apply", fleet])
        try #require(applied.status == 0, "\(applied.error)")

        // The leader, on "host A": it stops before the first apply it sends.
        let environment = ["MESHWARD_LOG_LEVEL": "notice"]
        let leader = try BackgroundCommand(
            cli, ["reconcile", fleet, "--interval", "1h"], executable: MeshwardCLI.faultyBinary,
            environment: environment.merging([
                SimulatedHost.variable: "host-a.example", AgentFreezeFault.variable: "1",
            ]) { $1 })
        defer { leader.send(SIGCONT) }
        try #require(
            try await eventually {
                try await LeaderTakeoverTests.lease(cli)?["holder"] as? String == "host-a.example pid \(leader.pid)"
            },
            "the first loop did not lead: \(leader.logText)")
        let deposedEpoch = try #require(try await LeaderTakeoverTests.lease(cli)?["epoch"] as? Int)

        // A rotation: the leader plans it, confirms its lease and stops with a batch on its way.
        try Self.spec(cipher: "aes-gcm-128", endpoints: endpoints).write(
            toFile: fleet, atomically: true, encoding: .utf8)
        try #require(
            try await eventually(seconds: 120) { Self.isStopped(leader.pid) },
            "the leader did not stop before its apply: \(leader.logText)")

        // The other controller, on "host B", waits out the lease and finishes the rotation.
        let successor = try BackgroundCommand(
            cli, ["reconcile", fleet, "--interval", "1s"], executable: MeshwardCLI.faultyBinary,
            environment: environment.merging([SimulatedHost.variable: "host-b.example"]) { $1 })
        let finished = try await eventually(seconds: 180) {
            let holder = try await LeaderTakeoverTests.lease(cli)?["holder"] as? String
            guard holder == "host-b.example pid \(successor.pid)" else { return false }
            return try await cli.run("plan", fleet, "--detailed-exitcode").status == 0
        }
        try #require(finished, "the other controller did not finish the rotation: \(successor.logText)")
        let epoch = try #require(try await LeaderTakeoverTests.lease(cli)?["epoch"] as? Int)
        #expect(epoch > deposedEpoch)
        for node in ["a", "b"] {
            let recorded = try String(contentsOfFile: base + "/\(node)/epoch", encoding: .utf8)
            #expect(
                recorded.trimmingCharacters(in: .whitespacesAndNewlines) == "\(epoch)",
                "agent \(node) holds epoch \(recorded)")
        }

        // The deposed leader goes on: its request leaves under its old epoch and is refused. The
        // batch's deadline passed while it was stopped, so it reports the batch indeterminate,
        // unless the refusal came back before it saw that.
        leader.send(SIGCONT)
        let refusal =
            "refused an apply with lease epoch \(deposedEpoch): it has already accepted epoch \(epoch), "
            + "so the sender is a deposed controller"
        let late = "did not answer before its deadline of 5 s for one batch"
        #expect(
            try await eventually { leader.logText.contains(refusal) || leader.logText.contains(late) },
            "the deposed leader's apply was neither refused nor given up at its deadline: \(leader.logText)")
        // The batch given up at its deadline still leaves (it is not cancelled): the agent's
        // refusal may come after the leader's line.
        #expect(
            try await eventually {
                agents.values.contains { agent in
                    agent.errorText.contains("refused an apply from a deposed controller")
                        && agent.errorText.contains("epoch.presented=\(deposedEpoch)")
                        && agent.errorText.contains("epoch.highest=\(epoch)")
                }
            }, "no agent logged the refusal with both epochs")

        // Nothing it sent took effect: the fleet is as the new leader left it, and it still leads.
        #expect(try await cli.run("plan", fleet, "--detailed-exitcode").status == 0)
        #expect(try await LeaderTakeoverTests.lease(cli)?["holder"] as? String == "host-b.example pid \(successor.pid)")
        // It stands by for the new leader (which led only while it was stopped).
        #expect(
            try await eventually {
                leader.logText.contains(
                    "standing by: another controller holds the lease lease.current=\"host-b.example pid \(successor.pid)\""
                )
            },
            "the deposed leader did not say it stands by: \(leader.logText)")

        for command in [leader, successor] { command.send(SIGTERM) }
        #expect(try await successor.waitForExit() == 0, "\(successor.logText)")
        _ = try await leader.waitForExit()
        withExtendedLifetime(database) {}
    }
}
