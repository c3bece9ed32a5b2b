import Foundation
import MeshwardTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `meshward agent run --simulated` as a separate process on a loopback port the kernel picks,
/// with its output in files (trace logging writes more than a pipe holds).
final class AgentProcess {
    let directory: String
    let process = Process()
    private let exit: ProcessExit
    let outputURL: URL
    let errorURL: URL
    private(set) var port = 0
    /// The port of `/metrics`, when started with `--metrics-address`.
    private(set) var metricsPort: Int?

    /// Starts the agent on `directory` and waits (up to 20 s) until it logs its port.
    ///
    /// - Parameters:
    ///   - listen: where it listens; port 0 picks a free one.
    ///   - namespace: runs it inside this network namespace (`ip netns exec`).
    ///   - simulated: backs it with a simulated kernel (`--simulated`); false serves the kernel of
    ///     the namespace it runs in over netlink.
    ///   - arguments: more options (`--metrics-address`, `--log-format`).
    init(
        directory: String, listen: String = "127.0.0.1:0", namespace: String? = nil, simulated: Bool = true,
        arguments: [String] = []
    ) async throws {
        self.directory = directory
        let capture = FileManager.default.temporaryDirectory.appendingPathComponent(
            "meshward-agent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: capture, withIntermediateDirectories: true)
        outputURL = capture.appendingPathComponent("stdout")
        errorURL = capture.appendingPathComponent("stderr")
        try Data().write(to: outputURL)
        try Data().write(to: errorURL)
        let agent =
            ["agent", "run", "--agent-dir", directory, "--listen", listen] + (simulated ? ["--simulated"] : [])
            + arguments
        if let namespace {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            process.arguments = ["netns", "exec", namespace, MeshwardCLI.binary.path] + agent
        } else {
            process.executableURL = MeshwardCLI.binary
            process.arguments = agent
        }
        process.environment = ProcessInfo.processInfo.environment.merging(["MESHWARD_LOG_LEVEL": "trace"]) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: outputURL)
        process.standardError = try FileHandle(forWritingTo: errorURL)
        exit = try ProcessExit(launching: process)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let log = errorText
            if let port = Self.port(in: log) {
                self.port = port
                metricsPort = Self.metricsPort(in: log)
                return
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        await stop()
        throw AgentProcessError(message: "the agent did not report its port: \(errorText)")
    }

    /// Writes each node's agent directory under `base` from `draft` (`agent credentials` on
    /// `cli`'s Store) and starts its agent with `arguments`; stops those started when one fails.
    static func start(
        _ nodes: [String], draft: String, cli: MeshwardCLI, base: String, arguments: [String] = []
    ) async throws -> [String: AgentProcess] {
        var agents: [String: AgentProcess] = [:]
        do {
            for node in nodes {
                let made = try await cli.run([
                    "agent", "credentials", draft, "--node", node, "--out", base + "/" + node,
                ])
                guard made.status == 0 else {
                    throw AgentProcessError(message: "agent credentials for \(node) failed: \(made.error)")
                }
                agents[node] = try await AgentProcess(directory: base + "/" + node, arguments: arguments)
            }
        } catch {
            for agent in agents.values { await agent.stop() }
            throw error
        }
        return agents
    }

    var errorText: String { String(decoding: (try? Data(contentsOf: errorURL)) ?? Data(), as: UTF8.self) }
    var output: Data {
        ((try? Data(contentsOf: outputURL)) ?? Data()) + ((try? Data(contentsOf: errorURL)) ?? Data())
    }

    /// Kills the agent at once (SIGKILL), as a crash or a power cut would, and waits for its end.
    func kill() async {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        _ = await exit.status()
    }

    /// Ends the agent with SIGTERM and waits for it.
    func stop() async {
        terminate()
        _ = await exit.status()
    }

    /// Sends the agent SIGTERM and returns at once, for a `defer` (which cannot await) at the end
    /// of a test: nothing after it depends on the agent's end, which follows on its own.
    func terminate() {
        if process.isRunning { process.terminate() }
    }

    /// Sends `signal` while it runs.
    func send(_ signal: Int32) {
        if process.isRunning { Glibc.kill(process.processIdentifier, signal) }
    }

    /// Waits for it to exit and returns its status, or nil when it still runs after `seconds` (a
    /// bound on a test that would otherwise hang).
    func waitForExit(seconds: Double = 30) async throws -> Int32? {
        await exit.status(within: seconds)
    }

    /// Whether something accepts a TCP connection on loopback `port` now.
    static func accepts(port: Int) -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// The agent's port, from its `agent listening` line (text or JSON).
    static func port(in log: String) -> Int? {
        guard let range = log.range(of: #""?listen"?[=:]"?[0-9.]+:[0-9]+"#, options: .regularExpression) else {
            return nil
        }
        return Int(log[range].split(separator: ":").last ?? "")
    }

    /// The metrics port, from its `serving metrics` line (text or JSON), logged before the agent listens.
    static func metricsPort(in log: String) -> Int? {
        guard let range = log.range(of: #""?http\.address"?[=:]"?[0-9.]+:[0-9]+"#, options: .regularExpression)
        else { return nil }
        return Int(log[range].split(separator: ":").last ?? "")
    }
}

extension AgentProcess {
    /// A spec of cluster `lab`: nodes a (198.18.0.1) and b (198.18.0.2) behind agents on
    /// loopback `ports`, one flow from a to b, drains of 1 s.
    static func labSpec(_ ports: [Int]) throws -> String {
        try MeshwardCLI.writeSpec(
            """
            version: 1
            cluster: lab
            defaults: { drain: 1s }
            nodes:
              - { name: a, addresses: [198.18.0.1], endpoint: "agent:127.0.0.1:\(ports[0])" }
              - { name: b, addresses: [198.18.0.2], endpoint: "agent:127.0.0.1:\(ports[1])" }
            flows:
              - { name: ab, from: { name: a }, to: { name: b } }
            """)
    }
}

struct AgentProcessError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
