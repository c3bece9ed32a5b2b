import Agent
import AgentWire
import Foundation
import Identity
import Kernel
import Logging
import MeshwardCore

/// Agents in this process, one per node, on loopback ports picked by the kernel, with real
/// gRPC and mutual TLS, backed by one connector (usually one simulated fleet, so that packets
/// still cross between nodes). For tests and benchmarks only; production links none of it.
public final class InProcessAgents: Sendable {
    public let cluster: String
    public let ca: ClusterCA
    /// The controller's credentials, issued by `ca`.
    public let controller: AgentCredentials
    public let servers: [String: AgentServer]
    /// The loopback port of each node's agent.
    public let ports: [String: Int]
    private let tasks: [Task<Void, Never>]
    /// Where the agents and their clients run (`ThreadTaskExecutor.shared` unless told otherwise).
    public let executor: (any TaskExecutor)?

    /// Starts one agent per node and returns once every one listens.
    ///
    /// - Parameters:
    ///   - directories: an agent directory per node (epochs persist there); nodes without one
    ///     keep their epoch in memory.
    ///   - credentials: replaces the credentials of some nodes (a wrong node name, an expired
    ///     certificate); the others get a valid certificate from `ca`.
    ///   - recorders: where some nodes' agents report what they serve (metrics).
    ///   - ports: the loopback port of some nodes' agents (an agent started again where it was);
    ///     the others get one the kernel picks.
    ///   - clock: times the agents' watch progress (a `SteppedClock` in tests that look at it).
    ///   - protocolVersions: the wire versions some nodes' agents speak (an agent of an older
    ///     release); the others speak this release's.
    public static func start(
        nodes: [String], cluster: String = "test", connector: any KernelConnector, endpoint: NodeEndpoint = .sim,
        ca: ClusterCA? = nil, directories: [String: AgentDirectory] = [:],
        credentials overrides: [String: AgentCredentials] = [:],
        recorders: [String: any AgentRecorder] = [:], ports requested: [String: Int] = [:],
        clock: any Clock<Duration> = ContinuousClock(), protocolVersions: [String: ClosedRange<UInt32>] = [:],
        executor: (any TaskExecutor)? = ThreadTaskExecutor.shared,
        logger: Logger = quietLogger
    ) async throws -> InProcessAgents {
        let now = Date()
        let ca = try ca ?? ClusterCA.create(cluster: cluster, now: now)
        let controller = try AgentCredentials(
            ca: ca, issued: ca.issue(for: .controller(cluster: cluster), now: now, validity: .seconds(86_400)))
        var servers: [String: AgentServer] = [:]
        var tasks: [Task<Void, Never>] = []
        var ports: [String: Int] = [:]
        for node in nodes {
            let credentials =
                try overrides[node]
                ?? AgentCredentials(
                    ca: ca,
                    issued: ca.issue(for: .node(cluster: cluster, name: node), now: now, validity: .seconds(86_400)))
            let server = try AgentServer(
                credentials: credentials, host: "127.0.0.1", port: requested[node] ?? 0, connector: connector,
                endpoint: endpoint,
                directory: directories[node], protocolVersions: protocolVersions[node] ?? WireCodec.protocolVersions,
                clock: clock, recorder: recorders[node] ?? DiscardingAgentRecorder(), executor: executor, logger: logger
            )
            servers[node] = server
            tasks.append(Task(executorPreference: executor) { try? await server.run() })
        }
        for (node, server) in servers { ports[node] = try await server.listeningPort() }
        return InProcessAgents(
            cluster: cluster, ca: ca, controller: controller, servers: servers, ports: ports, tasks: tasks,
            executor: executor)
    }

    private init(
        cluster: String, ca: ClusterCA, controller: AgentCredentials, servers: [String: AgentServer],
        ports: [String: Int], tasks: [Task<Void, Never>], executor: (any TaskExecutor)?
    ) {
        self.executor = executor
        self.cluster = cluster
        self.ca = ca
        self.controller = controller
        self.servers = servers
        self.ports = ports
        self.tasks = tasks
    }

    /// Each node's endpoint: `agent:127.0.0.1:PORT`.
    public var endpoints: [String: NodeEndpoint] {
        ports.mapValues { .agent(host: "127.0.0.1", port: UInt16($0)) }
    }

    /// A controller-side connector for these agents.
    public func connector(
        credentials: AgentCredentials? = nil, epoch: @escaping @Sendable () -> UInt64 = { 1 },
        now: @escaping @Sendable () -> Date = { Date() },
        revocations: @escaping @Sendable () async throws -> RevocationList = { .empty },
        logger: Logger = quietLogger
    ) -> AgentConnector {
        AgentConnector(
            credentials: credentials ?? controller, cluster: cluster, addresses: [:], epoch: epoch, now: now,
            revocations: revocations, executor: executor, logger: logger)
    }

    /// The kernel of `node` through its agent.
    public func kernel(
        _ node: String, reqid: Reqid = .meshwardDefault, credentials: AgentCredentials? = nil,
        epoch: @escaping @Sendable () -> UInt64 = { 1 }, now: @escaping @Sendable () -> Date = { Date() }
    ) async throws -> any NodeKernel {
        guard let endpoint = endpoints[node] else {
            throw KernelError.unreachable(node: node, reason: "no in-process agent serves it")
        }
        return try await connector(credentials: credentials, epoch: epoch, now: now)
            .connect(node: node, endpoint: endpoint, reqid: reqid)
    }

    /// Stops every agent and waits until each has returned.
    public func stop() async {
        for server in servers.values { server.shutdown() }
        for task in tasks { await task.value }
    }

    public static let quietLogger = Logger(label: "meshward.test-agents", factory: { _ in SwiftLogNoOpLogHandler() })
}
