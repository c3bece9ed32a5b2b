import AgentWire
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Identity
import Kernel
import Logging
import MeshwardCore
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// The controller's `NodeKernel` for a node behind an agent: observe and apply as gRPC calls
/// over mutual TLS, and the agent's watch stream over the same connection.
///
/// The agent must present a certificate of the cluster CA naming `spiffe://CLUSTER/node/NODE`
/// for the node dialled; any other is refused, and the error says which node was expected and
/// which certificate answered. Every call carries its deadline as the gRPC timeout, so a slow
/// or hung agent costs one deadline. An apply whose answer is lost (timeout, broken connection)
/// is `.indeterminate` for every operation of the batch: it is never resent blindly, and the
/// next observation decides.
public final class AgentKernel: NodeKernel {
    public let node: String
    public let reqid: Reqid
    /// `HOST:PORT` dialled, for messages and `status`.
    public let address: String
    let epoch: @Sendable () -> UInt64
    private let client: GRPCClient<HTTP2ClientTransport.Posix>
    let service: Meshward_Agent_V1_NodeKernelService.Client<HTTP2ClientTransport.Posix>
    let check: PeerCheck
    /// What this kernel's connections negotiated, read off the wire: the control connection's,
    /// and the enrollment connection's (a joining agent's).
    let handshakes: ControlChannelHandshakes
    let enrollmentHandshakes: ControlChannelHandshakes
    /// Called right before each apply request leaves (a test harness's).
    private let beforeApply: (@Sendable (String) -> Void)?
    private let connections: Task<Void, Never>
    let executor: (any TaskExecutor)?
    /// The wire versions this controller speaks (`WireCodec.protocolVersions`).
    let protocolVersions: ClosedRange<UInt32>
    /// How many messages a watch stream queues for a receiver that has not read them yet.
    let watchCapacity: Int
    /// Called when a watch stream ends with a `KernelWatchError` (an overflow, an agent that
    /// stopped watching or cannot watch), before its receiver reads the error.
    let onWatchEnded: (@Sendable (KernelWatchError) -> Void)?
    let logger: Logger
    /// Where the agent is, and the controller's credentials: an enrollment dials it again.
    let host: String
    let port: UInt16
    let credentials: AgentCredentials
    /// Who checks and issues a joining agent's certificate; nil: a joining agent stays
    /// `waitingForEnrollment` (commands that only observe). Set again by `refresh` for each use
    /// of a connection kept across commands and cycles.
    private let enrollmentState: Mutex<(any EnrollmentIssuer)?>
    var enrollment: (any EnrollmentIssuer)? { enrollmentState.withLock { $0 } }

    /// - Parameters:
    ///   - epoch: the controller's lease epoch, read at each apply.
    ///   - revocations: serials refused at every handshake of this connection.
    ///   - executor: where the connection and the calls run; nil for the shared pool (tests give
    ///     one of their own, see `AgentConnector`).
    ///   - protocolVersions: the wire versions it speaks; another release's, in tests of what two
    ///     releases say to each other.
    ///   - watchCapacity: how many messages each watch stream queues for a receiver that has not
    ///     read them; beyond that the stream ends with `KernelWatchError.overflow`.
    ///   - onWatchEnded: told of every watch stream that ends with a `KernelWatchError`.
    ///   - beforeApply: called with the node's name right before each apply request leaves,
    ///     after every check (a test harness's; nil in production).
    public init(
        node: String, host: String, port: UInt16, reqid: Reqid, credentials: AgentCredentials, cluster: String,
        epoch: @escaping @Sendable () -> UInt64, now: @escaping @Sendable () -> Date = { Date() },
        revocations: RevocationList = .empty, enrollment: (any EnrollmentIssuer)? = nil,
        executor: (any TaskExecutor)? = nil, protocolVersions: ClosedRange<UInt32> = WireCodec.protocolVersions,
        watchCapacity: Int = defaultWatchCapacity, onWatchEnded: (@Sendable (KernelWatchError) -> Void)? = nil,
        beforeApply: (@Sendable (String) -> Void)? = nil, logger: Logger
    ) throws {
        precondition(watchCapacity > 0)
        self.watchCapacity = watchCapacity
        self.onWatchEnded = onWatchEnded
        self.beforeApply = beforeApply
        self.credentials = credentials
        self.enrollmentState = Mutex(enrollment)
        // The connection's event loop, and its calls on that loop, unless a test gives an
        // executor of its own.
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let executor = executor ?? EventLoopTaskExecutor(loop)
        self.executor = executor
        self.protocolVersions = protocolVersions
        self.node = node
        self.reqid = reqid
        self.epoch = epoch
        self.logger = logger
        self.address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let ca = try ClusterCA.certificate(pem: credentials.caCertificatePEM)
        let expected = SPIFFEIdentity.node(cluster: cluster, name: node)
        let check = PeerCheck(
            verifier: PeerVerifier(ca: ca, cluster: cluster, revocations: revocations),
            peer: "the agent at \(address)", now: now,
            expected: { identity in identity == expected ? nil : "node \(node) (\(expected.uri))" })
        self.check = check
        let handshakes = ControlChannelHandshakes(role: "control connection to \(node) at \(address)", logger: logger)
        self.handshakes = handshakes
        self.enrollmentHandshakes = ControlChannelHandshakes(
            role: "enrollment connection to \(node) at \(address)", logger: logger)
        let configuration = try ControlChannelTLS.configuration(
            role: .client, certificateChain: [credentials.certificatePEM], privateKeyPEM: credentials.privateKeyPEM,
            trustRootsPEM: [credentials.caCertificatePEM])
        self.host = host
        self.port = port
        let target = Self.target(host: host, port: port)
        let transport = try Self.transport(
            to: target, configuration: configuration, verify: check.callback, handshakes: handshakes,
            role: "control connection to \(node) at \(address)", eventLoopGroup: loop, logger: logger)
        let client = GRPCClient(transport: transport)
        self.client = client
        self.service = Meshward_Agent_V1_NodeKernelService.Client(wrapping: client)
        self.connections = Task(executorPreference: executor) { try? await client.runConnections() }
    }

    /// The target for `host` (an IP address, or a name to resolve) and `port`.
    static func target(host: String, port: UInt16) -> any ResolvableTarget {
        guard let parsed = IPAddress(host) else { return ResolvableTargets.DNS(host: host, port: Int(port)) }
        if parsed.family == .ipv6 {
            return ResolvableTargets.IPv6(addresses: [SocketAddress.IPv6(host: host, port: Int(port))])
        }
        return ResolvableTargets.IPv4(addresses: [SocketAddress.IPv4(host: host, port: Int(port))])
    }

    /// A client transport to `target` with the control channel's TLS (`configuration`, from
    /// `ControlChannelTLS`; `verify` decides the server's certificate), every connection with a
    /// `TLSHandshakeObserver` reporting to `handshakes` and the control socket's IPsec bypass.
    ///
    /// grpc-swift's own TLS options always allow TLS 1.2 and the library's default key
    /// exchanges, so the transport is `customSecure` and each connection gets its TLS handler
    /// here, in front of gRPC's HTTP/2 pipeline.
    static func transport(
        to target: any ResolvableTarget, configuration: TLSConfiguration,
        verify: @escaping ControlChannelTLS.Verification, handshakes: ControlChannelHandshakes,
        role: String, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
    ) throws -> HTTP2ClientTransport.Posix {
        let context = try NIOSSLContext(configuration: configuration)
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.backoff.initial = .milliseconds(100)
        config.backoff.max = .seconds(2)
        config.channelDebuggingCallbacks.onCreateTCPConnection = { channel in
            channel.eventLoop.makeCompletedFuture {
                let tls = try NIOSSLClientHandler(
                    context: context, serverHostname: nil, customVerificationCallbackWithMetadata: verify)
                try channel.pipeline.syncOperations.addHandlers(
                    [handshakes.observer(for: channel), tls], position: .first)
            }.flatMap {
                ControlSocketBypass.install(on: channel, role: role, logger: logger)
            }
        }
        return try HTTP2ClientTransport.Posix(
            target: target, transportSecurity: .customSecure, config: config, eventLoopGroup: eventLoopGroup)
    }

    deinit {
        client.beginGracefulShutdown()
    }

    /// Brings a connection kept across commands and cycles up to date for its next use: the
    /// handshakes still to come (a reconnection after the agent restarted) refuse the serials on
    /// `revocations`, and a joining agent met from now on is enrolled by `enrollment` (nil
    /// reports it waiting for enrollment). The connection itself is not touched: an agent whose
    /// accepted certificate is now revoked needs a new one (`acceptedSerial`).
    public func refresh(revocations: RevocationList, enrollment: (any EnrollmentIssuer)?) {
        check.update(revocations: revocations)
        enrollmentState.withLock { $0 = enrollment }
    }

    /// Whether the last handshake refused the agent's certificate because the cluster CA this
    /// controller trusts did not issue it, a joining agent's provisional certificate excepted.
    public var presentedAnotherCA: Bool {
        guard case .untrusted = check.refusal else { return false }
        return !check.refusedProvisional
    }

    /// The serial of the certificate the agent presented at the last handshake that was
    /// accepted; nil until one was.
    public var acceptedSerial: String? { check.acceptedSerial }

    /// The TLS version and key exchange the connection to the agent negotiated, as its
    /// ServerHello said on the wire; nil until a handshake got that far.
    public var negotiatedTLS: TLSNegotiation? { handshakes.negotiated }

    /// What the last enrollment connection to the agent negotiated; nil before one.
    public var enrollmentNegotiatedTLS: TLSNegotiation? { enrollmentHandshakes.negotiated }

    /// When the certificate the agent presented at the last handshake expires; nil until a
    /// handshake succeeded.
    public var certificateNotValidAfter: Date? { check.acceptedNotValidAfter }

    /// Closes the connection cleanly and waits, up to `closeTimeout`, until it is closed; calls
    /// after this fail.
    ///
    /// A controller process must not exit with its control connections open: the kernel would
    /// reset a socket that still holds unread bytes, and the agent's last segments would then
    /// reach a host where the socket, and with it the socket's IPsec bypass, is gone; they would
    /// meet the node's own policies and count as drops (`XfrmInTmplMismatch`) although nothing
    /// of the fleet's traffic was lost. Closed in order, the last segment of the connection
    /// reaches a socket that still carries the bypass.
    public func close() async {
        client.beginGracefulShutdown()
        let connections = self.connections
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await connections.value }
            group.addTask { try? await Task.sleep(for: Self.closeTimeout) }
            await group.next()
            // A peer that never closes its side (one that speaks TLS but no gRPC) would hold the
            // graceful close, and this group with it, forever: once the timeout has passed the
            // connections are cancelled, which closes them at once.
            connections.cancel()
            group.cancelAll()
        }
    }

    /// How long `close()` waits for a connection to close cleanly.
    static let closeTimeout: Duration = .seconds(2)

    public func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
        var request = Meshward_Agent_V1_ObserveRequest()
        request.protocolVersion = firstRequestVersion
        request.newestProtocolVersion = protocolVersions.upperBound
        request.reqid = reqid.rawValue
        let reply: Meshward_Agent_V1_ObserveReply
        do {
            reply = try await onExecutor { [service, request, options = options(deadline)] in
                try await service.observe(request, options: options)
            }
        } catch  where check.refusedProvisional {
            // A joining agent: enrolled over a connection of its own, then observed once it
            // serves the issued certificate (waiting, until the deadline, for it to listen again).
            try await enroll(deadline: deadline)
            check.clearRefusal()
            do {
                reply = try await onExecutor { [service, request, options = options(deadline, waitForReady: true)] in
                    try await service.observe(request, options: options)
                }
            } catch {
                throw KernelError.unreachable(
                    node: node, reason: "agent at \(address), enrolled just now: \(describe(error))")
            }
        } catch {
            throw KernelError.unreachable(node: node, reason: "agent at \(address): \(describe(error))")
        }
        guard reads(reply.protocolVersion) else {
            throw KernelError.observationFailed(
                node: node,
                reason: AgentError.agentVersionRefused(
                    node: node, agent: reply.protocolVersion, controller: protocolVersions
                ).description)
        }
        do {
            var observation = try WireCodec.observation(from: reply)
            observation.agentCertificateExpiry = check.acceptedNotValidAfter
            return observation
        } catch {
            throw KernelError.observationFailed(node: node, reason: "agent at \(address): \(error)")
        }
    }

    public func apply(
        _ operations: [KernelOperation], deadline: ContinuousClock.Instant
    ) async throws
        -> [OperationResult]
    {
        try await applyReportingPosition(operations, deadline: deadline).results
    }

    /// `apply(_:deadline:)`, with the agent's watch position after the batch as its reply says
    /// (nil from an agent that is not watched or speaks wire version 1, and when the outcome is
    /// unknown).
    public func applyReportingPosition(
        _ operations: [KernelOperation], deadline: ContinuousClock.Instant
    ) async throws -> AppliedBatch {
        guard !operations.isEmpty else { return AppliedBatch(results: [], position: nil) }
        var request = Meshward_Agent_V1_ApplyRequest()
        request.protocolVersion = firstRequestVersion
        request.newestProtocolVersion = protocolVersions.upperBound
        request.reqid = reqid.rawValue
        request.epoch = epoch()
        request.operations = operations.map(WireCodec.encode)
        let reply: Meshward_Agent_V1_ApplyReply
        do {
            reply = try await onExecutor { [service, request, options = options(deadline), node, beforeApply] in
                beforeApply?(node)
                return try await service.apply(request, options: options)
            }
        } catch let error as RPCError where error.code == .failedPrecondition || error.code == .invalidArgument {
            // The agent answered and refused the whole batch before touching its kernel.
            throw KernelError.transport(node: node, operation: "apply", errno: nil, message: error.message)
        } catch {
            if let refusal = check.refusal {
                // The handshake failed: nothing reached the agent.
                throw KernelError.unreachable(node: node, reason: "agent at \(address): \(refusal)")
            }
            let reason = "the agent at \(address) did not answer (\(describe(error))); the next observation decides"
            logger.warning("apply outcome unknown", metadata: ["node": "\(node)", "operations": "\(operations.count)"])
            return Self.unknown(operations, reason: reason)
        }
        guard reads(reply.protocolVersion) else {
            // The agent took the batch but answered in a wire this controller cannot read: what
            // it did is unknown, and the next observation decides.
            let reason = AgentError.agentVersionRefused(
                node: node, agent: reply.protocolVersion, controller: protocolVersions
            ).description
            logger.warning("apply outcome unknown", metadata: ["node": "\(node)", "reason": "\(reason)"])
            return Self.unknown(operations, reason: reason)
        }
        guard reply.outcomes.count == operations.count else {
            let reason =
                "the agent at \(address) answered \(reply.outcomes.count) outcomes for \(operations.count) operations"
            return Self.unknown(operations, reason: reason)
        }
        let results = zip(operations, reply.outcomes).map { operation, outcome in
            let decoded =
                (try? WireCodec.decode(outcome))
                ?? .indeterminate(reason: "the agent at \(address) answered an outcome this controller cannot read")
            return OperationResult(operation: operation, outcome: decoded)
        }
        return AppliedBatch(
            results: results, position: reply.hasWatchPosition ? WireCodec.decode(reply.watchPosition) : nil)
    }

    /// Every operation of `operations` with an unknown outcome, for `reason`.
    private static func unknown(_ operations: [KernelOperation], reason: String) -> AppliedBatch {
        AppliedBatch(
            results: operations.map { OperationResult(operation: $0, outcome: .indeterminate(reason: reason)) },
            position: nil)
    }

    /// The version a request of wire version 1 (observe, apply, the ready mark, renewal) says it
    /// needs: 1, so that an agent of any version serves it, unless this controller no longer
    /// speaks 1.
    var firstRequestVersion: UInt32 { max(WireCodec.firstProtocolVersion, protocolVersions.lowerBound) }

    /// Whether this controller reads a reply written in `version`.
    func reads(_ version: UInt32) -> Bool { protocolVersions.contains(version) }

    /// Tells the agent that every channel of its node is established for `bootID`; returns
    /// whether the agent took the mark (false when it has booted since).
    public func markReady(bootID: String, deadline: ContinuousClock.Instant) async throws -> Bool {
        var request = Meshward_Agent_V1_MarkReadyRequest()
        request.protocolVersion = firstRequestVersion
        request.newestProtocolVersion = protocolVersions.upperBound
        request.bootID = bootID
        request.epoch = epoch()
        do {
            return try await onExecutor { [service, request, options = options(deadline)] in
                try await service.markReady(request, options: options).ready
            }
        } catch {
            throw KernelError.unreachable(node: node, reason: "agent at \(address): \(describe(error))")
        }
    }

    /// Runs a call on the kernel's executor when it has one.
    func onExecutor<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await withTaskExecutorPreference(executor) { try await body() }
    }

    func options(_ deadline: ContinuousClock.Instant, waitForReady: Bool = false) -> CallOptions {
        var options = CallOptions.defaults
        let left = ContinuousClock.now.duration(to: deadline)
        options.timeout = max(left, .milliseconds(1))
        options.waitForReady = waitForReady
        return options
    }

    func describe(_ error: any Error) -> String {
        if let refusal = check.refusal { return refusal.description }
        if let alert = handshakes.peerAlert {
            return "the agent refused the TLS handshake (alert \(TLSAlert.name(alert))): "
                + "\(ControlChannelTLS.requirement), and an agent of an older release may not speak it"
        }
        if let error = error as? RPCError {
            switch error.code {
            case .deadlineExceeded: return "no answer before the deadline"
            case .unavailable: return "unavailable: \(error.message)"
            default: return "\(error.code): \(error.message)"
            }
        }
        return "\(error)"
    }
}
