import AgentWire
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Identity
import Kernel
import Logging
import MeshwardCore
import Synchronization

/// `meshward agent run`: serves one host's kernel to the cluster's controllers over gRPC with
/// mutual TLS.
///
/// Its identity (node and cluster) comes from its own certificate. A client must present a
/// certificate of the same cluster's CA naming `spiffe://CLUSTER/controller`, inside its
/// validity window; anyone else fails the handshake, and the refusal is logged.
public final class AgentServer: Sendable {
    /// The node this agent serves, from its certificate.
    public let node: String
    public let cluster: String
    private let transport: HTTP2ServerTransport.Posix
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let refusals = RefusalLog()
    /// When the agent's own certificate is valid: it is enrolled inside this window only.
    public let certificateValidity: ClosedRange<Date>
    /// The boot this agent serves (`/proc/sys/kernel/random/boot_id`).
    public let bootID: String
    private let markedReady: ReadyMark
    private let epochs: EpochGate
    private let now: @Sendable () -> Date
    private let service: AgentService

    /// - Parameters:
    ///   - credentials: the agent's certificate and key, and the cluster CA (the only trust root).
    ///   - host, port: where to listen; port 0 picks a free one (`listeningPort()` tells which).
    ///   - connector, endpoint: how the agent opens its own kernel (netlink `local` or
    ///     `netns:NAME`, or a simulated kernel).
    ///   - directory: where the highest epoch and the ready mark persist; nil keeps them in memory.
    ///   - protocolVersion: the wire version it answers in; another release's, in tests of what
    ///     two releases say when they cannot talk.
    ///   - acceptedProtocolVersions: the versions of requests it serves (others are refused,
    ///     naming both versions); nil for `protocolVersion` alone.
    ///   - recorder: where it reports the requests it serves (metrics).
    public init(
        credentials: AgentCredentials, host: String, port: Int, connector: any KernelConnector,
        endpoint: NodeEndpoint, directory: AgentDirectory?, bootID: String = HostFacts.bootID,
        now: @escaping @Sendable () -> Date = { Date() }, protocolVersion: UInt32 = WireCodec.protocolVersion,
        acceptedProtocolVersions: Set<UInt32>? = nil, recorder: any AgentRecorder = DiscardingAgentRecorder(),
        logger: Logger
    ) throws {
        let own = try IssuedCredential(
            certificatePEM: credentials.certificatePEM, privateKeyPEM: credentials.privateKeyPEM)
        guard case .node(let cluster, let node) = PeerVerifier.identity(of: own.certificate) else {
            throw AgentError.credentials(
                path: directory?.certificatePath ?? "the agent certificate",
                reason: "it names no spiffe://CLUSTER/node/NAME identity")
        }
        self.node = node
        self.cluster = cluster
        self.certificateValidity = PeerVerifier.validity(of: own.certificate)
        self.bootID = bootID
        self.now = now
        let markedReady = ReadyMark(try directory?.readReadyBoot() == bootID)
        self.markedReady = markedReady
        let ca = try ClusterCA.certificate(pem: credentials.caCertificatePEM)
        let highest = try directory?.readHighestEpoch() ?? 0
        let epochs = EpochGate(node: node, highest: highest) { epoch in try directory?.writeHighestEpoch(epoch) }
        self.epochs = epochs
        recorder.record(highestEpoch: highest)
        let refusals = self.refusals
        let check = PeerCheck(
            verifier: PeerVerifier(ca: ca, cluster: cluster), peer: "a client", now: now,
            expected: { identity in
                identity == .controller(cluster: cluster) ? nil : SPIFFEIdentity.controller(cluster: cluster).uri
            },
            onRefusal: { error in
                refusals.append(error)
                logger.warning("refused a client", metadata: ["node": "\(node)", "reason": "\(error)"])
            })
        let security = HTTP2ServerTransport.Posix.TransportSecurity.mTLS(
            certificateChain: [.bytes(Array(credentials.certificatePEM.utf8), format: .pem)],
            privateKey: .bytes(Array(credentials.privateKeyPEM.utf8), format: .pem)
        ) { config in
            config.trustRoots = .certificates([.bytes(Array(credentials.caCertificatePEM.utf8), format: .pem)])
            config.clientCertificateVerification = .noHostnameVerification
            config.customVerificationCallback = check.callback
        }
        let transport = Self.transport(
            host: host, port: port, security: security, listener: "agent listener",
            connection: "accepted control connection", logger: logger)
        self.transport = transport
        let notified = Mutex(false)
        let bootGuard = try BootGuardKeeper(node: node, directory: directory, logger: logger)
        let service = AgentService(
            node: node, connector: connector, endpoint: endpoint, epochs: epochs, directory: directory,
            bootID: bootID, protocolVersion: protocolVersion,
            acceptedProtocolVersions: acceptedProtocolVersions ?? [protocolVersion], recorder: recorder,
            bootGuard: bootGuard,
            onReady: { boot in
                markedReady.set()
                let first = notified.withLock { sent in
                    defer { sent = true }
                    return !sent
                }
                guard first else { return }
                logger.notice(
                    "the controller marked every channel established", metadata: ["node": "\(node)", "boot": "\(boot)"])
                SystemdNotifier.notifyReady()
            }, logger: logger)
        self.service = service
        self.server = GRPCServer(transport: transport, services: [service])
    }

    /// A server transport on `host:port`. The listener carries the control socket's IPsec
    /// bypass before it binds (the handshake of every connection is exempt); each accepted socket
    /// inherits it from the listener and sets it again. `listener` and `connection` name them in
    /// the logs.
    static func transport(
        host: String, port: Int, security: HTTP2ServerTransport.Posix.TransportSecurity, listener: String,
        connection: String, logger: Logger
    ) -> HTTP2ServerTransport.Posix {
        let address: GRPCNIOTransportCore.SocketAddress =
            host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.channelDebuggingCallbacks.onBindTCPListener = { channel in
            ControlSocketBypass.install(on: channel, role: listener, logger: logger)
        }
        config.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
            ControlSocketBypass.install(on: channel, role: connection, logger: logger)
        }
        return HTTP2ServerTransport.Posix(address: address, transportSecurity: security, config: config)
    }

    /// Installs the boot guard (`bootGuardEntries` that the kernel lost), then serves until
    /// `shutdown()` or cancellation. Nothing is accepted, and so no controller can mark the agent
    /// ready, before the guard is in the kernel.
    public func run() async throws {
        await service.installBootGuard()
        try await server.serve()
    }

    /// The boot guard list as the agent last derived it from its kernel (or read it at start).
    public var bootGuardEntries: [BootGuardEntry] { service.bootGuard.entries }

    /// The port the server listens on, once it is bound.
    public func listeningPort() async throws -> Int {
        let address = try await transport.listeningAddress
        if let ipv4 = address.ipv4 { return ipv4.port }
        if let ipv6 = address.ipv6 { return ipv6.port }
        throw AgentError.invalidAddress("\(address)")
    }

    /// Stops accepting connections and returns from `run()` once open calls finish.
    public func shutdown() { server.beginGracefulShutdown() }

    /// The clients refused so far, for tests and diagnostics.
    public var refusedClients: [IdentityError] { refusals.entries }

    /// The highest controller lease epoch this agent has accepted.
    public var highestEpoch: UInt64 { epochs.current }

    /// Whether the controller marked every channel of this node established for this boot (as
    /// `meshward agent wait-ready` checks).
    public var isMarkedReady: Bool { markedReady.isSet }

    /// Whether the agent is ready, and why, in a line for `/readyz`: it is enrolled (its
    /// certificate is valid now) and the controller marked it ready for this boot.
    public var readiness: (ready: Bool, reason: String) {
        let formatter = ISO8601DateFormatter()
        let at = now()
        if at < certificateValidity.lowerBound {
            return (
                false,
                "not enrolled: the agent certificate is not valid until "
                    + formatter.string(from: certificateValidity.lowerBound)
            )
        }
        if at > certificateValidity.upperBound {
            return (
                false,
                "not enrolled: the agent certificate expired at "
                    + formatter.string(from: certificateValidity.upperBound)
                    + "; reissue it with `meshward agent credentials`"
            )
        }
        guard isMarkedReady else {
            return (false, "enrolled, but the controller has not marked every channel established for boot \(bootID)")
        }
        return (true, "enrolled; the controller marked every channel established for boot \(bootID)")
    }
}

/// Whether the controller marked this agent ready for its boot.
final class ReadyMark: Sendable {
    private let marked: Mutex<Bool>

    init(_ marked: Bool) { self.marked = Mutex(marked) }

    func set() { marked.withLock { $0 = true } }

    var isSet: Bool { marked.withLock { $0 } }
}

/// The clients an agent refused, kept for diagnostics (the most recent 100).
final class RefusalLog: Sendable {
    private let list = Mutex<[IdentityError]>([])

    func append(_ error: IdentityError) {
        list.withLock { list in
            list.append(error)
            if list.count > 100 { list.removeFirst(list.count - 100) }
        }
    }

    var entries: [IdentityError] { list.withLock { $0 } }
}
