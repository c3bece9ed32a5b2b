import Foundation
import Kernel
import Logging
import MeshwardCore

/// Opens the kernels of `agent` endpoints: dials each node's agent over mutual TLS with the
/// controller's credentials. `endpoint: agent` dials the node's first address.
public struct AgentConnector: KernelConnector {
    private let credentials: AgentCredentials
    private let cluster: String
    private let addresses: [String: IPAddress]
    private let epoch: @Sendable () -> UInt64
    private let now: @Sendable () -> Date
    private let executor: (any TaskExecutor)?
    private let logger: Logger

    /// - Parameters:
    ///   - credentials: the controller's certificate and key and the cluster CA.
    ///   - addresses: each node's first address, for `endpoint: agent`.
    ///   - epoch: the controller's lease epoch, sent with every apply.
    ///   - executor: where connections and calls run; nil (the shared pool) outside tests.
    public init(
        credentials: AgentCredentials, cluster: String, addresses: [String: IPAddress],
        epoch: @escaping @Sendable () -> UInt64, now: @escaping @Sendable () -> Date = { Date() },
        executor: (any TaskExecutor)? = nil, logger: Logger
    ) {
        self.executor = executor
        self.credentials = credentials
        self.cluster = cluster
        self.addresses = addresses
        self.epoch = epoch
        self.now = now
        self.logger = logger
    }

    public var schemes: Set<NodeEndpoint.Scheme> { [.agent] }

    public func connect(node: String, endpoint: NodeEndpoint, reqid: Reqid) async throws -> any NodeKernel {
        guard case .agent(let host, let port) = endpoint else {
            throw KernelError.unreachable(node: node, reason: "`\(endpoint)` is not an agent endpoint")
        }
        guard let host = host ?? addresses[node]?.description else {
            throw KernelError.unreachable(
                node: node, reason: "`endpoint: agent` dials the node's first address, and it has none")
        }
        do {
            return try AgentKernel(
                node: node, host: host, port: port, reqid: reqid, credentials: credentials, cluster: cluster,
                epoch: epoch, now: now, executor: executor, logger: logger)
        } catch {
            throw KernelError.unreachable(node: node, reason: "cannot set up the connection to its agent: \(error)")
        }
    }
}
