import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `meshward agent run` under SIGTERM: the agent runs as a service of a `ServiceGroup`, which
/// stops it gracefully, while it serves and while it waits for enrollment.
@Suite("Agent stop", .serialized)
struct AgentStopTests {
    @Test(
        "an agent that receives SIGTERM while a reconcile loop holds its connection stops serving, logs it, closes its port and exits 0"
    )
    func stopsWhileALoopHoldsItsConnection() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let base = try AgentJoinTests.scratch()
        defer { try? FileManager.default.removeItem(at: base) }
        let draft = try AgentProcess.labSpec([7443, 7443])
        let agents = try await AgentProcess.start(["a", "b"], draft: draft, cli: cli, base: base.path)
        defer { for agent in agents.values { agent.terminate() } }
        let a = try #require(agents["a"])
        let b = try #require(agents["b"])
        let spec = try AgentProcess.labSpec([a.port, b.port])

        // The loop keeps one connection per agent across its cycles: after its first cycle it
        // holds one to each, idle until the next.
        let loop = try BackgroundCommand(cli, ["reconcile", spec, "--interval", "1h", "--output", "json"])
        defer { loop.send(SIGTERM) }
        try #require(
            try await eventually(seconds: 30) { loop.outputText.hasSuffix("\n") },
            "the loop did not end a cycle: \(loop.outputText) \(loop.logText)")
        #expect(loop.outputText.contains(#""outcome":"converged""#), "\(loop.outputText)")
        #expect(AgentProcess.accepts(port: a.port))

        a.send(SIGTERM)
        let status = try await a.waitForExit()
        #expect(status == 0, "the agent did not exit 0 (nil: still running): \(a.errorText)")
        #expect(a.errorText.contains("agent stopping: no new connections"), "\(a.errorText)")
        #expect(a.errorText.contains("agent stopped"), "\(a.errorText)")
        #expect(!AgentProcess.accepts(port: a.port), "port \(a.port) still accepts connections")
        #expect(AgentProcess.accepts(port: b.port), "the other agent stopped too")
    }

    @Test(
        "an agent that receives SIGTERM while it waits for enrollment exits 1 saying it was not enrolled, keeps its token file and closes its port"
    )
    func stopsWhileWaitingForEnrollment() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let base = try AgentJoinTests.scratch()
        defer { try? FileManager.default.removeItem(at: base) }
        let draft = try AgentProcess.labSpec([7443, 7443])
        let (_, tokenFile) = try await AgentJoinTests.tokenFile(cli: cli, draft: draft, base: base)
        let b = try await AgentProcess(
            directory: base.appendingPathComponent("agent-b").path,
            arguments: ["--join-token-file", tokenFile, "--node", "b", "--cluster", "lab"])
        defer { b.terminate() }
        try #require(b.errorText.contains("agent waiting for enrollment"), "\(b.errorText)")
        #expect(AgentProcess.accepts(port: b.port))

        b.send(SIGTERM)
        let status = try await b.waitForExit()
        #expect(status == 1, "the agent did not exit 1 (nil: still running): \(b.errorText)")
        #expect(
            b.errorText.contains("the agent of node b stopped before a controller enrolled it"), "\(b.errorText)")
        #expect(FileManager.default.fileExists(atPath: tokenFile), "the token file was deleted")
        #expect(!b.errorText.contains("agent listening"), "\(b.errorText)")
        #expect(!AgentProcess.accepts(port: b.port), "port \(b.port) still accepts connections")
    }
}
