import AgentWire
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Identity
import Logging
import MeshwardCore
import NIOSSL
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `meshward agent run --join-token-file` on a host without credentials: serves
/// `EnrollmentService` alone, on a provisional self-signed certificate, until a controller has
/// enrolled it.
///
/// The host makes its key (`JoinRequest`); the key never leaves it. A client is accepted only
/// when its chain ends at the CA whose SHA-256 fingerprint the token pins and its leaf is a
/// controller certificate of that CA (`PinnedCAVerifier`); any other fails the handshake, and the
/// refusal is logged naming both fingerprints. Once a controller issued the certificate, the
/// agent checks it (pinned CA, its own key, a node identity), writes its key, certificate and
/// the CA certificate into its directory (0600 files, each written, synced and renamed into
/// place), deletes the token file, acknowledges, and `run()` returns the credentials: the caller
/// then serves `NodeKernelService` with them on the same port (`AgentServer`).
public final class JoiningAgent: Sendable {
    public let node: String
    public let cluster: String
    public let token: JoinToken
    public let request: JoinRequest
    private let transport: HTTP2ServerTransport.Custom<ControlChannelListenerFactory>
    private let server: GRPCServer<HTTP2ServerTransport.Custom<ControlChannelListenerFactory>>
    private let handshakes: ControlChannelHandshakes
    private let refusals = RefusalLog()
    private let outcomes: EnrollmentOutcomes
    private let logger: Logger
    /// The port it listened on, kept once known: the agent listens there next.
    private let bound = Mutex<Int?>(nil)
    private let executor: (any TaskExecutor)?

    /// How long `run()` waits, once enrolled, for the enrollment server to close its connections
    /// before it stops it anyway.
    public static let closeTimeout: Duration = .seconds(5)

    /// - Parameters:
    ///   - token: the join token; the proof is keyed with its verifier, and its CA fingerprint is
    ///     the only trust root.
    ///   - cluster, node: the names the CSR carries (the controller issues for the spec's node
    ///     it dialled, with the spec's addresses, whatever the CSR asks).
    ///   - directory: where the credentials are written once enrolled.
    ///   - tokenFile: deleted once the credentials are written; nil when the token came another way.
    ///   - executor: where the server and its calls run; nil (the shared pool) outside tests.
    public init(
        token: JoinToken, cluster: String, node: String, host: String, port: Int, directory: AgentDirectory,
        tokenFile: String?, now: @escaping @Sendable () -> Date = { Date() }, executor: (any TaskExecutor)? = nil,
        logger: Logger
    ) throws {
        self.executor = executor
        self.node = node
        self.cluster = cluster
        self.token = token
        self.logger = logger
        let request = try JoinRequest(cluster: cluster, node: node, addresses: [], now: now())
        self.request = request
        let refusals = self.refusals
        let pin = ControllerPin(
            verifier: PinnedCAVerifier(fingerprint: token.caFingerprint, cluster: cluster), now: now,
            onRefusal: { error in
                refusals.append(error)
                logger.warning("refused a client", metadata: ["node": "\(node)", "reason": "\(error)"])
            })
        let certificatePEM = try request.provisionalCertificatePEM
        // The provisional certificate is its own trust root: never used to decide (the callback
        // does), but never the system store either.
        let configuration = try ControlChannelTLS.configuration(
            role: .server, certificateChain: [certificatePEM], privateKeyPEM: request.privateKeyPEM,
            trustRootsPEM: [certificatePEM])
        let handshakes = ControlChannelHandshakes(role: "joining agent listener of node \(node)", logger: logger)
        self.handshakes = handshakes
        transport = AgentServer.transport(
            host: host, port: port, context: try NIOSSLContext(configuration: configuration), verify: pin.callback,
            handshakes: handshakes,
            listener: "joining agent listener", connection: "accepted enrollment connection", logger: logger)
        let outcomes = EnrollmentOutcomes()
        self.outcomes = outcomes
        let service = EnrollmentHandler(
            node: node, token: token, request: request, pin: pin, directory: directory, tokenFile: tokenFile,
            now: now, outcomes: outcomes, logger: logger)
        server = GRPCServer(transport: transport, services: [service])
    }

    /// Serves `EnrollmentService` until a controller enrolled this host, then stops serving
    /// (the acknowledgement flushed first) and returns the credentials it wrote. Throws
    /// `AgentError.notEnrolled` when `shutdown()` came first, or the graceful shutdown of the
    /// `ServiceGroup` it runs in (which calls `shutdown()`), or what stopped the server.
    public func run() async throws -> AgentCredentials {
        try await withGracefulShutdownHandler {
            try await enroll()
        } onGracefulShutdown: { [self] in
            shutdown()
        }
    }

    /// `run()` without the graceful shutdown handler.
    private func enroll() async throws -> AgentCredentials {
        let server = self.server
        let outcomes = self.outcomes
        let serving = Task(executorPreference: executor) {
            defer { outcomes.finish() }
            try await server.serve()
        }
        let enrolled = await outcomes.first()
        _ = try? await listeningPort()
        server.beginGracefulShutdown()
        // The handler returned after the controller closed its side: the stream is done. A
        // controller that keeps its connection open does not hold the switch up for long.
        let closed = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                _ = try? await serving.value
                return true
            }
            group.addTask {
                try? await Task.sleep(for: Self.closeTimeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !closed {
            logger.notice(
                "a controller kept its enrollment connection open; closing it",
                metadata: ["node": "\(node)", "after": "\(Self.closeTimeout)"])
            serving.cancel()
        }
        if let enrolled { return enrolled }
        try await serving.value
        throw AgentError.notEnrolled(node: node)
    }

    /// The port the server listens on, once it is bound; still known after it stopped.
    public func listeningPort() async throws -> Int {
        if let port = bound.withLock({ $0 }) { return port }
        let port = try await AgentServer.port(of: transport)
        bound.withLock { $0 = port }
        return port
    }

    /// What the last enrollment connection negotiated, read off its ServerHello; nil before one.
    public var negotiatedTLS: TLSNegotiation? { handshakes.negotiated }

    /// Stops serving; `run()` then throws `AgentError.notEnrolled` unless it was enrolled.
    public func shutdown() {
        outcomes.finish()
        server.beginGracefulShutdown()
    }

    /// The clients refused so far (a man in the middle: another CA), for tests and diagnostics.
    public var refusedClients: [IdentityError] { refusals.entries }

    /// The reasons the controllers gave for the enrollments they refused, most recent last.
    public var refusedEnrollments: [String] { outcomes.refusals }
}

/// Where the enrollment handler reports: the credentials once written (first wins), and the
/// controllers' refusals.
final class EnrollmentOutcomes: Sendable {
    private let stream: AsyncStream<AgentCredentials>
    private let continuation: AsyncStream<AgentCredentials>.Continuation
    private let refused = Mutex<[String]>([])

    init() {
        (stream, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingOldest(1))
    }

    func enrolled(_ credentials: AgentCredentials) { continuation.yield(credentials) }

    func refusal(_ reason: String) { refused.withLock { $0.append(reason) } }

    var refusals: [String] { refused.withLock { $0 } }

    func finish() { continuation.finish() }

    /// The credentials, or nil when finished first.
    func first() async -> AgentCredentials? {
        for await credentials in stream { return credentials }
        return nil
    }
}
