import Foundation
import Identity
import Kernel
import Logging
import MeshwardCore

/// Opens the kernels of `agent` endpoints: dials each node's agent over mutual TLS with the
/// controller's credentials. `endpoint: agent` dials the node's first address.
///
/// Every connection loads the revocation list afresh (`revocations`), and its handshakes refuse
/// an agent whose certificate serial is on it.
public struct AgentConnector: KernelConnector {
    private let credentials: AgentCredentials
    private let cluster: String
    private let addresses: [String: IPAddress]
    private let epoch: @Sendable () -> UInt64
    private let now: @Sendable () -> Date
    private let revocations: @Sendable () async throws -> RevocationList
    private let executor: (any TaskExecutor)?
    private let enrollment: (any EnrollmentIssuer)?
    private let logger: Logger

    /// - Parameters:
    ///   - credentials: the controller's certificate and key and the cluster CA.
    ///   - addresses: each node's first address, for `endpoint: agent`.
    ///   - epoch: the controller's lease epoch, sent with every apply.
    ///   - revocations: the cluster's revoked serials (from the Store), read at every connect.
    ///   - enrollment: who checks and issues the certificate of an agent that answers with a
    ///     provisional certificate; nil leaves such a node `waitingForEnrollment`.
    ///   - executor: where connections and calls run; nil (the shared pool) outside tests.
    public init(
        credentials: AgentCredentials, cluster: String, addresses: [String: IPAddress],
        epoch: @escaping @Sendable () -> UInt64, now: @escaping @Sendable () -> Date = { Date() },
        revocations: @escaping @Sendable () async throws -> RevocationList = { .empty },
        enrollment: (any EnrollmentIssuer)? = nil, executor: (any TaskExecutor)? = nil, logger: Logger
    ) {
        self.enrollment = enrollment
        self.revocations = revocations
        self.executor = executor
        self.credentials = credentials
        self.cluster = cluster
        self.addresses = addresses
        self.epoch = epoch
        self.now = now
        self.logger = logger
    }

    public var schemes: Set<NodeEndpoint.Scheme> { [.agent] }

    /// The host and port an `agent` endpoint dials: its own host, or the node's first address
    /// in `addresses`. Throws `KernelError.unreachable` for another endpoint, or a node without one.
    static func dialled(
        node: String, endpoint: NodeEndpoint, addresses: [String: IPAddress]
    ) throws -> (host: String, port: UInt16) {
        guard case .agent(let host, let port) = endpoint else {
            throw KernelError.unreachable(node: node, reason: "`\(endpoint)` is not an agent endpoint")
        }
        guard let host = host ?? addresses[node]?.description else {
            throw KernelError.unreachable(
                node: node, reason: "`endpoint: agent` dials the node's first address, and it has none")
        }
        return (host, port)
    }

    public func connect(node: String, endpoint: NodeEndpoint, reqid: Reqid) async throws -> any NodeKernel {
        let (host, port) = try Self.dialled(node: node, endpoint: endpoint, addresses: addresses)
        let revoked: RevocationList
        do {
            revoked = try await revocations()
        } catch {
            throw KernelError.unreachable(node: node, reason: "cannot read the revocation list: \(error)")
        }
        do {
            return try AgentKernel(
                node: node, host: host, port: port, reqid: reqid, credentials: credentials, cluster: cluster,
                epoch: epoch, now: now, revocations: revoked, enrollment: enrollment, executor: executor,
                logger: logger)
        } catch {
            throw KernelError.unreachable(node: node, reason: "cannot set up the connection to its agent: \(error)")
        }
    }
}
