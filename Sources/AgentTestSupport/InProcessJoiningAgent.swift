import Agent
import Foundation
import Identity
import Kernel
import Logging
import MeshwardCore
import Synchronization

/// One joining agent in this process, as `meshward agent run --join-token-file` runs it: it
/// serves enrollment on a loopback port the kernel picks, and once enrolled serves its kernel
/// (`connector`) with the issued certificate on the same port. For tests only; like
/// `InProcessAgents`, it runs on `ThreadTaskExecutor.shared` unless told otherwise.
public final class InProcessJoiningAgent: Sendable {
    public let joining: JoiningAgent
    public let port: Int
    private let served: ServedAgent
    private let task: Task<Void, any Error>

    /// Starts it and returns once it listens.
    public static func start(
        token: JoinToken, cluster: String, node: String, connector: any KernelConnector,
        endpoint: NodeEndpoint = .sim, directory: AgentDirectory, tokenFile: String?,
        executor: (any TaskExecutor)? = ThreadTaskExecutor.shared, logger: Logger = InProcessAgents.quietLogger
    ) async throws -> InProcessJoiningAgent {
        let joining = try JoiningAgent(
            token: token, cluster: cluster, node: node, host: "127.0.0.1", port: 0, directory: directory,
            tokenFile: tokenFile, executor: executor, logger: logger)
        let served = ServedAgent()
        let task = Task(executorPreference: executor) {
            let credentials = try await joining.run()
            let server = try AgentServer(
                credentials: credentials, host: "127.0.0.1", port: try await joining.listeningPort(),
                connector: connector, endpoint: endpoint, directory: directory, executor: executor, logger: logger)
            guard served.keep(server) else { return }
            try await server.run()
        }
        let port: Int
        do {
            port = try await joining.listeningPort()
        } catch {
            joining.shutdown()
            _ = try? await task.value
            throw error
        }
        return InProcessJoiningAgent(joining: joining, port: port, served: served, task: task)
    }

    private init(joining: JoiningAgent, port: Int, served: ServedAgent, task: Task<Void, any Error>) {
        self.joining = joining
        self.port = port
        self.served = served
        self.task = task
    }

    /// The agent server once the host is enrolled; nil before.
    public var server: AgentServer? { served.server }

    /// `agent:127.0.0.1:PORT`.
    public var endpoint: NodeEndpoint { .agent(host: "127.0.0.1", port: UInt16(port)) }

    /// Stops whichever server runs and waits until it returned; the error `run()` ended with,
    /// if any (`AgentError.notEnrolled` when it was never enrolled).
    @discardableResult
    public func stop() async -> (any Error)? {
        joining.shutdown()
        served.stop()?.shutdown()
        do {
            try await task.value
            return nil
        } catch {
            return error
        }
    }
}

/// The server an enrolled in-process agent runs, and whether it was told to stop first.
final class ServedAgent: Sendable {
    private let state = Mutex<(server: AgentServer?, stopped: Bool)>((nil, false))

    /// Keeps `server`; false when stopped already (it is then not to run).
    func keep(_ server: AgentServer) -> Bool {
        state.withLock { state in
            state.server = server
            return !state.stopped
        }
    }

    /// Marks it stopped; the server to shut down, if one runs.
    func stop() -> AgentServer? {
        state.withLock { state in
            state.stopped = true
            return state.server
        }
    }

    var server: AgentServer? { state.withLock { $0.server } }
}
