import AgentWire
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Identity
import Kernel
import Logging
import MeshwardCore
import NIOSSL
import ServiceLifecycle
import Synchronization

/// `meshward agent run`: serves one host's kernel to the cluster's controllers over gRPC with
/// mutual TLS.
///
/// Its identity (node and cluster) comes from its own certificate. A client must present a
/// certificate of the same cluster's CA naming `spiffe://CLUSTER/controller`, inside its
/// validity window; anyone else fails the handshake, and the refusal is logged.
///
/// When its kernel keeps a watch model (`WatchedKernel`), it starts watching at its start and
/// serves `Watch` from that model, with a progress on every stream every ~10 s on its clock.
///
/// A `Service`: under a `ServiceGroup`, its graceful shutdown is `shutdown()`.
public final class AgentServer: Service, Sendable {
    /// The node this agent serves, from its certificate.
    public let node: String
    public let cluster: String
    /// The listener serving now: replaced, on the same port, after a certificate renewal.
    private let listener: Mutex<Listener>
    private let stopping = Mutex(false)
    private let host: String
    private let check: PeerCheck
    private let handshakes: ControlChannelHandshakes
    private let logger: Logger
    private let refusals = RefusalLog()
    private let validity: Mutex<ClosedRange<Date>>
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
    ///   - protocolVersions: the wire versions it speaks; another release's, in tests of what
    ///     two releases say to each other. It answers each request in the newest version the
    ///     controller speaks too, and refuses one that shares none, naming both.
    ///   - clock: times the watch streams' progress.
    ///   - progressInterval: how often each watch stream gets a progress (jittered by up to 10%).
    ///   - recorder: where it reports the requests it serves (metrics).
    ///   - executor: where its listeners serve; nil (the shared pool) outside tests.
    public init(
        credentials: AgentCredentials, host: String, port: Int, connector: any KernelConnector,
        endpoint: NodeEndpoint, directory: AgentDirectory?, bootID: String = HostFacts.bootID,
        now: @escaping @Sendable () -> Date = { Date() },
        protocolVersions: ClosedRange<UInt32> = WireCodec.protocolVersions,
        clock: any Clock<Duration> = ContinuousClock(),
        progressInterval: Duration = .seconds(10), recorder: any AgentRecorder = DiscardingAgentRecorder(),
        executor: (any TaskExecutor)? = nil, logger: Logger
    ) throws {
        self.serving = ServingTasks(executor: executor)
        let own = try IssuedCredential(
            certificatePEM: credentials.certificatePEM, privateKeyPEM: credentials.privateKeyPEM)
        guard case .node(let cluster, let node) = PeerVerifier.identity(of: own.certificate) else {
            throw AgentError.credentials(
                path: directory?.certificatePath ?? "the agent certificate",
                reason: "it names no spiffe://CLUSTER/node/NAME identity")
        }
        self.node = node
        self.cluster = cluster
        self.validity = Mutex(PeerVerifier.validity(of: own.certificate))
        self.host = host
        self.logger = logger
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
                recorder.record(handshakeRefused: .certificate)
                logger.warning("refused a client", metadata: ["node": "\(node)", "reason": "\(error)"])
            })
        self.check = check
        let handshakes = ControlChannelHandshakes(
            role: "agent listener of node \(node)", logger: logger,
            onRefusal: { refusal in recorder.record(handshakeRefused: refusal.reason) },
            onConnection: { recorder.recordAcceptedConnection() })
        self.handshakes = handshakes
        let notified = Mutex(false)
        let bootGuard = try BootGuardKeeper(node: node, directory: directory, logger: logger)
        let service = AgentService(
            node: node, connector: connector, endpoint: endpoint, epochs: epochs, directory: directory,
            bootID: bootID, protocolVersions: protocolVersions, recorder: recorder, bootGuard: bootGuard,
            renewer: CertificateRenewer(
                credentials: credentials, node: node, cluster: cluster, ca: ca, directory: directory, now: now,
                logger: logger),
            watches: AgentWatches(
                node: node, bootID: bootID, clock: clock, progressInterval: progressInterval, logger: logger),
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
        self.listener = Mutex(
            Self.listener(
                context: try Self.context(presenting: credentials), host: host, port: port, check: check,
                handshakes: handshakes, service: service, logger: logger))
        service.renewer.onRenewed { [weak self] renewed in await self?.switchListener(to: renewed) }
    }

    /// One listener: its transport and the server on it.
    struct Listener: Sendable {
        let transport: HTTP2ServerTransport.Custom<ControlChannelListenerFactory>
        let server: GRPCServer<HTTP2ServerTransport.Custom<ControlChannelListenerFactory>>
    }

    /// The TLS context of a listener that presents `credentials` under the control channel's
    /// policy, trusting only their cluster CA. Throws when the credentials do not load; made
    /// before a renewed listener replaces the old one, so that the old one keeps serving then.
    static func context(presenting credentials: AgentCredentials) throws -> NIOSSLContext {
        try NIOSSLContext(
            configuration: ControlChannelTLS.configuration(
                role: .server, certificateChain: [credentials.certificatePEM],
                privateKeyPEM: credentials.privateKeyPEM, trustRootsPEM: [credentials.caCertificatePEM]))
    }

    /// A listener on `host:port` with `context` (`context(presenting:)`) that accepts only
    /// clients `check` accepts, over the control channel's TLS.
    static func listener(
        context: NIOSSLContext, host: String, port: Int, check: PeerCheck, handshakes: ControlChannelHandshakes,
        service: AgentService, logger: Logger
    ) -> Listener {
        let transport = Self.transport(
            host: host, port: port, context: context, verify: check.callback, handshakes: handshakes,
            listener: "agent listener", connection: "accepted control connection", logger: logger)
        return Listener(transport: transport, server: GRPCServer(transport: transport, services: [service]))
    }

    /// A server transport on `host:port` with the control channel's TLS (`context`, made from
    /// `ControlChannelTLS.configuration`) and `verify` deciding the client's certificate. The listener carries
    /// the control socket's IPsec bypass before it binds (the handshake of every connection is
    /// exempt); each accepted socket inherits it from the listener and sets it again.
    /// `listener` and `connection` name them in the logs.
    static func transport(
        host: String, port: Int, context: NIOSSLContext, verify: @escaping ControlChannelTLS.Verification,
        handshakes: ControlChannelHandshakes, listener: String, connection: String, logger: Logger
    ) -> HTTP2ServerTransport.Custom<ControlChannelListenerFactory> {
        var config = HTTP2ServerTransport.Custom<ControlChannelListenerFactory>.Config.defaults
        config.channelDebuggingCallbacks.onBindTCPListener = { channel in
            ControlSocketBypass.install(on: channel, role: listener, logger: logger)
        }
        config.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
            ControlSocketBypass.install(on: channel, role: connection, logger: logger)
        }
        let factory = ControlChannelListenerFactory(
            host: host, port: port, context: context, verify: verify, handshakes: handshakes)
        return HTTP2ServerTransport.Custom(listenerFactory: factory, config: config)
    }

    /// Installs the boot guard (`bootGuardEntries` that the kernel lost), then serves until
    /// `shutdown()`, the graceful shutdown of the `ServiceGroup` it runs in (which calls
    /// `shutdown()`: open calls finish) or cancellation. Nothing is accepted, and so no controller
    /// can mark the agent ready, before the guard is in the kernel.
    ///
    /// After a certificate renewal the listener is replaced: grpc-swift cannot change a running
    /// listener's certificate. The old one stops accepting and the new one, with the new key and
    /// certificate, binds the same port at once (trying again for as long as the old socket
    /// holds it), before the renewal is answered; the old one's open calls, that answer among
    /// them, finish on it. A controller that connects in between is refused and tries again.
    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await serve()
        } onGracefulShutdown: { [self] in
            logger.notice("agent stopping: no new connections, open calls finish first", metadata: ["node": "\(node)"])
            shutdown()
        }
    }

    /// `run()` without the graceful shutdown handler.
    private func serve() async throws {
        await service.installBootGuard()
        // Watching starts before the first controller connects; a kernel that is polled, or one
        // that cannot be opened yet, is served as before.
        _ = try? await service.kernel(reqid: .meshwardDefault)
        let progress = Task { [service] in await service.watches.runProgress() }
        defer { progress.cancel() }
        var current = listener.withLock { $0 }
        serving.start(current)
        while true {
            let outcome = await withTaskCancellationHandler {
                await serving.result(of: current)
            } onCancel: { [self] in
                shutdown()
                serving.cancelAll()
            }
            // A switch stops the old listener before the new one binds: wait for it to commit.
            while switching.withLock({ $0 }) && !stopping.withLock({ $0 }) && !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(10))
            }
            let latest = listener.withLock { $0 }
            if stopping.withLock({ $0 }) || latest.server === current.server || Task.isCancelled {
                await serving.waitForAll()
                return try outcome.get()
            }
            // Replaced by a renewal: the new listener serves already.
            if case .failure(let error) = outcome {
                logger.debug("the replaced listener stopped", metadata: ["node": "\(node)", "error": "\(error)"])
            }
            current = latest
        }
    }

    /// Whether a switch is between stopping the old listener and committing the new one.
    private let switching = Mutex(false)

    /// The tasks serving this agent's listeners: the current one, and one being replaced while
    /// its open calls finish.
    private let serving: ServingTasks

    /// How long a listener being replaced waits for its open connections to close before it is
    /// stopped anyway.
    public static let switchTimeout: Duration = .seconds(5)

    /// Replaces the listener with one that presents `credentials`, on the port the old one had.
    private func switchListener(to credentials: AgentCredentials) async {
        let old = listener.withLock { $0 }
        let port: Int
        do {
            port = try await Self.port(of: old.transport)
        } catch {
            logger.error(
                "cannot tell the listener's port; the renewed certificate is used from the next start",
                metadata: ["node": "\(node)", "error": "\(error)"])
            return
        }
        guard !stopping.withLock({ $0 }) else { return }
        let context: NIOSSLContext
        do {
            context = try Self.context(presenting: credentials)
        } catch {
            logger.error(
                "cannot use the renewed certificate; the old one keeps serving until the next start",
                metadata: ["node": "\(node)", "error": "\(error)"])
            return
        }
        switching.withLock { $0 = true }
        defer { switching.withLock { $0 = false } }
        old.server.beginGracefulShutdown()
        var wait: Duration = .milliseconds(5)
        var attempts = 0
        while !stopping.withLock({ $0 }) {
            attempts += 1
            let next = Self.listener(
                context: context, host: host, port: port, check: check, handshakes: handshakes, service: service,
                logger: logger)
            serving.start(next)
            do {
                _ = try await Self.port(of: next.transport)
            } catch {
                // The old socket is not closed yet, or the port is taken: try again.
                serving.drop(next)
                if attempts % 100 == 0 {
                    logger.error(
                        "cannot listen again after the renewal; still trying",
                        metadata: ["node": "\(node)", "port": "\(port)", "error": "\(error)"])
                }
                try? await Task.sleep(for: wait)
                wait = min(wait * 2, .milliseconds(500))
                continue
            }
            let replaced = listener.withLock { current -> Bool in
                guard !stopping.withLock({ $0 }) else { return false }
                current = next
                return true
            }
            guard replaced else {
                next.server.beginGracefulShutdown()
                return
            }
            if let issued = try? IssuedCredential(
                certificatePEM: credentials.certificatePEM, privateKeyPEM: credentials.privateKeyPEM)
            {
                validity.withLock { $0 = PeerVerifier.validity(of: issued.certificate) }
            }
            logger.notice(
                "listening again with the renewed certificate",
                metadata: ["node": "\(node)", "port": "\(port)", "attempts": "\(attempts)"])
            break
        }
        Task { [logger, node, serving] in
            try? await Task.sleep(for: Self.switchTimeout)
            guard serving.isRunning(old) else { return }
            logger.notice(
                "a controller kept its connection open across the renewal; closing it",
                metadata: ["node": "\(node)", "after": "\(Self.switchTimeout)"])
            serving.cancel(old)
        }
    }

    /// The port `transport` listens on, once it is bound; throws when it could not bind or
    /// stopped listening.
    static func port(of transport: HTTP2ServerTransport.Custom<ControlChannelListenerFactory>) async throws -> Int {
        guard let address = await transport.listeningAddress else { throw AgentError.notListening }
        if let ipv4 = address.ipv4 { return ipv4.port }
        if let ipv6 = address.ipv6 { return ipv6.port }
        throw AgentError.invalidAddress("\(address)")
    }

    /// The boot guard list as the agent last derived it from its kernel (or read it at start).
    public var bootGuardEntries: [BootGuardEntry] { service.bootGuard.entries }

    /// What the last control connection accepted negotiated, read off its ServerHello; nil
    /// before one.
    public var negotiatedTLS: TLSNegotiation? { handshakes.negotiated }

    /// The port the server listens on, once it is bound.
    public func listeningPort() async throws -> Int {
        try await Self.port(of: listener.withLock { $0 }.transport)
    }

    /// Stops accepting connections and returns from `run()` once open calls finish; watch
    /// streams, which never finish by themselves, are ended (their controllers watch again
    /// elsewhere or later, from their last seq).
    public func shutdown() {
        let current = listener.withLock { current in
            stopping.withLock { $0 = true }
            return current
        }
        current.server.beginGracefulShutdown()
        service.watches.stop(reason: "the agent of node \(node) is stopping")
    }

    /// When the agent's own certificate is valid: it is enrolled inside this window only. A
    /// renewal moves it.
    public var certificateValidity: ClosedRange<Date> { validity.withLock { $0 } }

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

/// The tasks serving an agent's listeners, by listener: each is kept until its result was
/// read (or it was dropped), and counts as running until its server returned.
final class ServingTasks: Sendable {
    private struct State {
        var tasks: [ObjectIdentifier: Task<Void, any Error>] = [:]
        var running: Set<ObjectIdentifier> = []
    }

    private let state = Mutex(State())
    private let executor: (any TaskExecutor)?

    init(executor: (any TaskExecutor)?) { self.executor = executor }

    func start(_ listener: AgentServer.Listener) {
        let key = ObjectIdentifier(listener.server)
        let server = listener.server
        state.withLock { state in
            state.running.insert(key)
            // Created under the lock: its end, which takes the lock, comes after it is recorded.
            state.tasks[key] = Task(executorPreference: executor) { [weak self] in
                defer { self?.state.withLock { _ = $0.running.remove(key) } }
                try await server.serve()
            }
        }
    }

    /// How `listener`'s server returned (or that it was never started), once it has; its task is
    /// forgotten then.
    func result(of listener: AgentServer.Listener) async -> Result<Void, any Error> {
        let key = ObjectIdentifier(listener.server)
        guard let task = state.withLock({ $0.tasks[key] }) else { return .success(()) }
        let result = await task.result
        state.withLock { _ = $0.tasks.removeValue(forKey: key) }
        return result
    }

    func isRunning(_ listener: AgentServer.Listener) -> Bool {
        state.withLock { $0.running.contains(ObjectIdentifier(listener.server)) }
    }

    func cancel(_ listener: AgentServer.Listener) {
        state.withLock { $0.tasks[ObjectIdentifier(listener.server)] }?.cancel()
    }

    /// Cancels a listener that never served (it could not bind) and forgets it.
    func drop(_ listener: AgentServer.Listener) {
        state.withLock { $0.tasks.removeValue(forKey: ObjectIdentifier(listener.server)) }?.cancel()
    }

    func cancelAll() {
        for task in state.withLock({ Array($0.tasks.values) }) { task.cancel() }
    }

    func waitForAll() async {
        for task in state.withLock({ Array($0.tasks.values) }) { _ = await task.result }
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
