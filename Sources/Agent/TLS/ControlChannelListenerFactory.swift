import GRPCNIOTransportHTTP2
import NIOCore
import NIOPosix
import NIOSSL

/// The listening socket of an agent (or of a joining agent's enrollment), for grpc-swift's
/// `HTTP2ServerTransport.Custom`: every accepted connection gets the control channel's TLS
/// (`ControlChannelTLS`, which grpc-swift's own TLS options cannot express: they always allow
/// TLS 1.2 and the library's default key exchanges), with a `TLSHandshakeObserver` in front of
/// it that reads what the client offered and what was agreed, before gRPC's HTTP/2 pipeline.
struct ControlChannelListenerFactory: HTTP2ServerTransport.ListenerFactory {
    let host: String
    let port: Int
    let context: NIOSSLContext
    let verify: ControlChannelTLS.Verification
    let handshakes: ControlChannelHandshakes

    var eventLoopGroup: any EventLoopGroup { MultiThreadedEventLoopGroup.singleton }

    func makeListeningChannel(
        listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
        connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
    ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
        let address = try SocketAddress(ipAddress: host, port: port)
        let (context, verify, handshakes) = (self.context, self.verify, self.handshakes)
        return try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in listenerConfigurator.configure(channel: channel) }
            .bind(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handshakes.observer(for: channel))
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLServerHandler(context: context, customVerificationCallbackWithMetadata: verify))
                }.flatMap {
                    connectionConfigurator.configure(channel: channel, tls: .configured(requireALPN: false))
                }
            }
    }
}
