import Foundation
import Identity
import Kernel
import Logging
import MeshwardCore
import Synchronization

/// One connection per node's agent, kept for as long as the controller process runs: every
/// command and every reconcile cycle of the process uses the same connection instead of dialling
/// (and shaking hands with) every agent again.
///
/// A connection is replaced, the old one closed, only when what it was made for changes: the
/// address or port dialled, the reqid, the cluster, or the controller's credentials (a renewed
/// controller certificate); or when the certificate its agent presented is now revoked. A
/// connection that breaks (an agent that restarts, a network cut) reconnects by itself, to that
/// agent alone, with gRPC's backoff (100 ms, doubling up to 2 s); each reconnection's handshake
/// checks the agent's certificate against the revocation list of the latest use.
///
/// `use(...)` gives the connector for one use (a pass, a plan, a status, a retry): the
/// revocation list and the enrollment issuer it gives apply to every kept connection from then on.
public final class AgentConnectionPool: Sendable {
    private let now: @Sendable () -> Date
    private let executor: (any TaskExecutor)?
    private let beforeApply: (@Sendable (String) -> Void)?
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var links: [String: Link] = [:]
        /// The lease epoch every apply and renewal over a kept connection carries.
        var epoch: UInt64 = 0
        /// Connections made since the pool was created (replacements included).
        var opened = 0
    }

    /// What a connection was made for: another value needs another connection.
    struct LinkKey: Hashable {
        var host: String
        var port: UInt16
        var reqid: Reqid
        var cluster: String
        var certificatePEM: String
    }

    private struct Link {
        let key: LinkKey
        let kernel: AgentKernel
    }

    /// - Parameters:
    ///   - now: the controller's clock, for the validity of the agents' certificates.
    ///   - executor: where connections and calls run; nil (each connection's event loop) outside tests.
    ///   - beforeApply: called with the node's name right before each apply request leaves (a
    ///     test harness's; nil in production).
    public init(
        now: @escaping @Sendable () -> Date = { Date() }, executor: (any TaskExecutor)? = nil,
        beforeApply: (@Sendable (String) -> Void)? = nil, logger: Logger
    ) {
        self.beforeApply = beforeApply
        self.now = now
        self.executor = executor
        self.logger = logger
    }

    /// The lease epoch the kept connections carry with every apply, ready mark and renewal from
    /// now on: a run under the lease sets its epoch before it sends anything.
    public func lead(epoch: UInt64) {
        state.withLock { $0.epoch = epoch }
    }

    /// The connector for one use of the pool.
    ///
    /// - Parameters:
    ///   - credentials: the controller's certificate and key, and the cluster CA.
    ///   - addresses: each node's first address, for `endpoint: agent`.
    ///   - revocations: the cluster's revoked serials as this use read them, or why they could not
    ///     be read (every agent node is then unreachable, with that reason).
    ///   - enrollment: who checks and issues the certificate of a joining agent met in this use;
    ///     nil reports it waiting for enrollment.
    public func use(
        credentials: AgentCredentials, cluster: String, addresses: [String: IPAddress],
        revocations: Result<RevocationList, any Error>, enrollment: (any EnrollmentIssuer)?
    ) -> AgentPoolConnector {
        AgentPoolConnector(
            pool: self, credentials: credentials, cluster: cluster, addresses: addresses, revocations: revocations,
            enrollment: enrollment)
    }

    /// The lease epoch the kept connections carry now.
    public var epoch: UInt64 { state.withLock { $0.epoch } }

    /// The kept connection to `node`'s agent; nil when none was made.
    public func link(for node: String) -> (any AgentLink)? {
        state.withLock { $0.links[node]?.kernel }
    }

    /// The kept connection to `node`'s agent as a kernel (the watch's streams use it); nil when
    /// none was made.
    public func keptKernel(for node: String) -> (any NodeKernel)? {
        state.withLock { $0.links[node]?.kernel }
    }

    /// Connections made since the pool was created, replacements included.
    public var connectionsOpened: Int { state.withLock { $0.opened } }

    /// Closes the connections of every node not in `nodes` (nodes that left the fleet, or whose
    /// every certificate is revoked).
    public func keep(only nodes: Set<String>) async {
        let gone = state.withLock { state in
            let gone = state.links.filter { !nodes.contains($0.key) }
            for node in gone.keys { state.links[node] = nil }
            return gone.values.map(\.kernel)
        }
        await Self.close(gone)
    }

    /// Closes every connection (`AgentKernel.close`, each cleanly, up to its timeout); a use after
    /// this dials again.
    public func close() async {
        let all = state.withLock { state in
            defer { state.links = [:] }
            return state.links.values.map(\.kernel)
        }
        await Self.close(all)
    }

    private static func close(_ kernels: [AgentKernel]) async {
        guard !kernels.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            for kernel in kernels { group.addTask { await kernel.close() } }
        }
    }

    /// The kept connection for `key`, brought up to date for this use, or a new one (the node's
    /// old one, if any, closed).
    func kernel(
        node: String, key: LinkKey, credentials: AgentCredentials, revocations: RevocationList,
        enrollment: (any EnrollmentIssuer)?
    ) async throws -> AgentKernel {
        let (kernel, replaced) = try state.withLock { state -> (AgentKernel, AgentKernel?) in
            let existing = state.links[node]
            if let existing, existing.key == key,
                existing.kernel.acceptedSerial.map({ revocations.revocation(of: $0) == nil }) ?? true
            {
                existing.kernel.refresh(revocations: revocations, enrollment: enrollment)
                return (existing.kernel, nil)
            }
            let kernel = try AgentKernel(
                node: node, host: key.host, port: key.port, reqid: key.reqid, credentials: credentials,
                cluster: key.cluster, epoch: { [weak self] in self?.epoch ?? 0 }, now: now,
                revocations: revocations, enrollment: enrollment, executor: executor, beforeApply: beforeApply,
                logger: logger)
            state.links[node] = Link(key: key, kernel: kernel)
            state.opened += 1
            return (kernel, existing?.kernel)
        }
        if let replaced {
            logger.debug("replacing the connection to a node's agent", metadata: ["node": "\(node)"])
            await replaced.close()
        }
        return kernel
    }
}

/// The connector of one use of an `AgentConnectionPool`: its kernels are the pool's, kept after
/// the use (`keepsKernels`).
public struct AgentPoolConnector: KernelConnector {
    let pool: AgentConnectionPool
    let credentials: AgentCredentials
    let cluster: String
    let addresses: [String: IPAddress]
    let revocations: Result<RevocationList, any Error>
    let enrollment: (any EnrollmentIssuer)?

    public var schemes: Set<NodeEndpoint.Scheme> { [.agent] }

    public var keepsKernels: Bool { true }

    public func connect(node: String, endpoint: NodeEndpoint, reqid: Reqid) async throws -> any NodeKernel {
        let (host, port) = try AgentConnector.dialled(node: node, endpoint: endpoint, addresses: addresses)
        let revoked: RevocationList
        do {
            revoked = try revocations.get()
        } catch {
            throw KernelError.unreachable(node: node, reason: "cannot read the revocation list: \(error)")
        }
        let key = AgentConnectionPool.LinkKey(
            host: host, port: port, reqid: reqid, cluster: cluster, certificatePEM: credentials.certificatePEM)
        do {
            return try await pool.kernel(
                node: node, key: key, credentials: credentials, revocations: revoked, enrollment: enrollment)
        } catch {
            throw KernelError.unreachable(node: node, reason: "cannot set up the connection to its agent: \(error)")
        }
    }
}
