import Agent
import AgentTestSupport
import Foundation
import Identity
import Kernel
import KernelSimulator
import MeshwardCore
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization
import Testing

/// The control channel's TLS policy (`ControlChannelTLS`): TLS 1.3 only, X25519MLKEM768 only, at
/// both ends, checked against real clients and servers of another policy over loopback and read
/// off the connections' own hellos.
@Suite("the control channel speaks TLS 1.3 with X25519MLKEM768 only", .timeLimit(.minutes(1)))
struct ControlChannelTLSTests {
    static let agreed = TLSNegotiation(version: 0x0304, group: 0x11EC)

    @Test(
        "the controller and an agent negotiate TLS 1.3 with X25519MLKEM768, as both ends read it off the ServerHello")
    func controllerAndAgentNegotiateHybrid() async throws {
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: AgentFixtures.fleet()))
        defer { Task { await agents.stop() } }
        let kernel = try #require(try await agents.kernel("a") as? AgentKernel)
        _ = try await kernel.observe()
        #expect(kernel.negotiatedTLS == Self.agreed)
        #expect(kernel.negotiatedTLS?.versionName == "TLSv1.3")
        #expect(kernel.negotiatedTLS?.groupName == "X25519MLKEM768")
        #expect(try #require(agents.servers["a"]).negotiatedTLS == Self.agreed)
        await kernel.close()
    }

    @Test(
        "a client offering only the X25519 key exchange fails the handshake, and the agent counts a key-exchange refusal",
        arguments: [NIOTLSCurve.x25519, .secp256r1])
    func classicalKeyExchangeRefused(curve: NIOTLSCurve) async throws {
        let recorder = HandshakeRecorder()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: AgentFixtures.fleet()), recorders: ["a": recorder])
        defer { Task { await agents.stop() } }
        var configuration = try Self.controllerConfiguration(agents)
        configuration.curves = [curve]
        let outcome = await RawTLSClient.handshake(port: try #require(agents.ports["a"]), configuration: configuration)
        #expect(outcome != nil, "the handshake completed")
        #expect(recorder.refusals == [.keyExchange])
        #expect(
            ControlChannelRefusal.keyExchange(offered: [curve.rawValue]).description
                == "the client offered the key exchange \(ControlChannelTLS.groupName(curve.rawValue)) only; "
                + "Meshward's control channel requires TLS 1.3 with the X25519MLKEM768 key exchange")
    }

    @Test("a TLS 1.2 client fails the handshake, and the agent counts a tls-version refusal")
    func tls12Refused() async throws {
        let recorder = HandshakeRecorder()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: AgentFixtures.fleet()), recorders: ["a": recorder])
        defer { Task { await agents.stop() } }
        var configuration = try Self.controllerConfiguration(agents)
        configuration.minimumTLSVersion = .tlsv12
        configuration.maximumTLSVersion = .tlsv12
        configuration.curves = nil
        let outcome = await RawTLSClient.handshake(port: try #require(agents.ports["a"]), configuration: configuration)
        #expect(outcome != nil, "the handshake completed")
        #expect(recorder.refusals == [.tlsVersion])
    }

    @Test("a client of the same policy completes the handshake and nothing is counted as refused")
    func samePolicyAccepted() async throws {
        let recorder = HandshakeRecorder()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: AgentFixtures.fleet()), recorders: ["a": recorder])
        defer { Task { await agents.stop() } }
        let outcome = await RawTLSClient.handshake(
            port: try #require(agents.ports["a"]), configuration: try Self.controllerConfiguration(agents))
        #expect(outcome == nil, "the handshake failed: \(outcome.map { "\($0)" } ?? "")")
        #expect(recorder.refusals.isEmpty)
    }

    @Test(
        "a controller that meets an agent offering only X25519 fails with the alert and the policy it requires",
        arguments: [false, true])
    func classicalAgentRefused(tls12: Bool) async throws {
        let ca = try ClusterCA.create(cluster: "test", now: Date())
        let node = try AgentCredentials(
            ca: ca, issued: ca.issue(for: .node(cluster: "test", name: "a"), now: Date(), validity: .seconds(3600)))
        let controller = try AgentCredentials(
            ca: ca, issued: ca.issue(for: .controller(cluster: "test"), now: Date(), validity: .seconds(3600)))
        var configuration = try ControlChannelTLS.configuration(
            role: .server, certificateChain: [node.certificatePEM], privateKeyPEM: node.privateKeyPEM,
            trustRootsPEM: [node.caCertificatePEM])
        if tls12 {
            configuration.minimumTLSVersion = .tlsv12
            configuration.maximumTLSVersion = .tlsv12
            configuration.curves = nil
        } else {
            configuration.curves = [.x25519]
        }
        let server = try await RawTLSServer.start(configuration: configuration)
        defer { Task { await server.stop() } }
        let kernel = try AgentKernel(
            node: "a", host: "127.0.0.1", port: UInt16(server.port), reqid: .meshwardDefault, credentials: controller,
            cluster: "test", epoch: { 1 }, executor: ThreadTaskExecutor.shared, logger: InProcessAgents.quietLogger)
        let message = await AgentFixtures.errorText { _ = try await kernel.observe(deadline: .now + .seconds(10)) }
        let alert = tls12 ? "protocol_version (70)" : "handshake_failure (40)"
        #expect(message.contains("the agent refused the TLS handshake (alert \(alert))"), "\(message)")
        #expect(
            message.contains("Meshward's control channel requires TLS 1.3 with the X25519MLKEM768 key exchange"),
            "\(message)")
        #expect(kernel.negotiatedTLS == nil)
        await kernel.close()
    }

    /// The controller's own configuration for `agents`, as a raw client to start from.
    static func controllerConfiguration(_ agents: InProcessAgents) throws -> TLSConfiguration {
        try ControlChannelTLS.configuration(
            role: .client, certificateChain: [agents.controller.certificatePEM],
            privateKeyPEM: agents.controller.privateKeyPEM, trustRootsPEM: [agents.controller.caCertificatePEM])
    }
}

/// Counts the handshakes an agent refused, by reason.
final class HandshakeRecorder: AgentRecorder {
    private let recorded = Mutex<[HandshakeRefusalReason]>([])

    var refusals: [HandshakeRefusalReason] { recorded.withLock { $0 } }

    func record(request: AgentRequestKind, result: AgentRequestResult) {}
    func record(highestEpoch: UInt64) {}
    func record(statistics: [String: UInt64]) {}
    func record(handshakeRefused reason: HandshakeRefusalReason) { recorded.withLock { $0.append(reason) } }
    func recordAcceptedConnection() {}
}

/// A TLS client of any configuration, with no gRPC on top: it only shakes hands.
enum RawTLSClient {
    /// Connects to `127.0.0.1:port` and shakes hands with `configuration` (any server
    /// certificate accepted); nil when the handshake completed, else why it did not.
    static func handshake(port: Int, configuration: TLSConfiguration) async -> (any Error)? {
        await handshake(port: port, configuration: configuration, untilServerCloses: false)
    }

    /// Shakes hands as `handshake` does, then waits until the server closes the connection
    /// (as an agent does once it refused a client's certificate, which TLS 1.3 checks after the
    /// client's side of the handshake completed); false when it is still open after 60 s (a bound
    /// on a test that would otherwise hang: in a full run on two loaded cores the agent's close
    /// took longer than 10 s once).
    static func handshakeUntilServerCloses(port: Int, configuration: TLSConfiguration) async -> Bool {
        await handshake(port: port, configuration: configuration, untilServerCloses: true) == nil
    }

    private static func handshake(
        port: Int, configuration: TLSConfiguration, untilServerCloses: Bool
    ) async -> (any Error)? {
        do {
            let context = try NIOSSLContext(configuration: configuration)
            let group = MultiThreadedEventLoopGroup.singleton
            let loop = group.next()
            let done = loop.makePromise(of: Void.self)
            // A handshake that neither completes nor fails in 10 s fails the test, not the run.
            let deadline = loop.scheduleTask(in: .seconds(10)) { done.fail(ChannelError.connectTimeout(.seconds(10))) }
            defer { deadline.cancel() }
            let channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(
                                context: context, serverHostname: nil,
                                customVerificationCallbackWithMetadata: { _, promise in
                                    promise.succeed(.certificateVerified(VerificationMetadata(nil)))
                                }))
                        try channel.pipeline.syncOperations.addHandler(HandshakeOutcome(done))
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            defer { channel.close(promise: nil) }
            if untilServerCloses {
                _ = try? await done.futureResult.get()
                let timedOut = Mutex(false)
                let wait = channel.eventLoop.scheduleTask(in: .seconds(60)) {
                    timedOut.withLock { $0 = true }
                    channel.close(promise: nil)
                }
                try await channel.closeFuture.get()
                wait.cancel()
                return timedOut.withLock { $0 } ? ChannelError.connectTimeout(.seconds(10)) : nil
            }
            try await done.futureResult.get()
            return nil
        } catch {
            return error
        }
    }
}

/// A TCP client that sends bytes and waits until the server closes the connection.
enum RawTCPClient {
    /// Connects to `127.0.0.1:port`, sends `bytes`, and returns once the server closed the
    /// connection; throws when it is still open after 10 s.
    static func sendAndWaitForClose(port: Int, bytes: [UInt8]) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
        let timedOut = Mutex(false)
        let deadline = channel.eventLoop.scheduleTask(in: .seconds(10)) {
            timedOut.withLock { $0 = true }
            channel.close(promise: nil)
        }
        try await channel.closeFuture.get()
        deadline.cancel()
        #expect(timedOut.withLock { !$0 }, "the server did not close the connection in 10 s")
    }
}

/// A TLS server of any configuration (a node's certificate, no gRPC): what an agent of another
/// policy looks like to the controller.
final class RawTLSServer: Sendable {
    let port: Int
    private let channel: any Channel

    private init(port: Int, channel: any Channel) {
        self.port = port
        self.channel = channel
    }

    static func start(configuration: TLSConfiguration) async throws -> RawTLSServer {
        let context = try NIOSSLContext(configuration: configuration)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLServerHandler(
                            context: context,
                            customVerificationCallbackWithMetadata: { _, promise in
                                promise.succeed(.certificateVerified(VerificationMetadata(nil)))
                            }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return RawTLSServer(port: try #require(channel.localAddress?.port), channel: channel)
    }

    func stop() async { try? await channel.close() }
}

/// Completes its promise when the handshake completes, fails it when it does not.
final class HandshakeOutcome: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let promise: EventLoopPromise<Void>

    init(_ promise: EventLoopPromise<Void>) { self.promise = promise }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { promise.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}
