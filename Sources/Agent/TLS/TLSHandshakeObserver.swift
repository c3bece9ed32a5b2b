import NIOCore

/// Sits between the socket and the TLS handler of a control connection and reads the
/// handshake's plaintext opening in both directions (`TLSHelloReader`), passing every byte on
/// unchanged. It reports the ClientHello's offer, the ServerHello's choice, and an alert that
/// answered a hello, on whichever side it runs: what the connection really negotiated, read off
/// the wire rather than assumed from the configuration.
///
/// Once both directions are read it passes bytes on without looking at them (one comparison
/// per read and write); it stays in the pipeline, as removing a handler from under the TLS
/// handler's flush is not worth that comparison.
final class TLSHandshakeObserver: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Which way the bytes that said something went.
    enum Direction: Sendable {
        /// From the peer to this side.
        case received
        /// From this side to the peer.
        case sent
    }

    private var received = TLSHelloReader()
    private var sent = TLSHelloReader()
    private let report: @Sendable (Direction, TLSHelloReader.Event) -> Void

    /// - Parameter report: called on the channel's event loop for every event read; it must
    ///   return quickly.
    init(report: @escaping @Sendable (Direction, TLSHelloReader.Event) -> Void) {
        self.report = report
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !received.finished else { return context.fireChannelRead(data) }
        let buffer = unwrapInboundIn(data)
        for event in received.read(buffer.readableBytesView) { report(.received, event) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !sent.finished else { return context.write(data, promise: promise) }
        let buffer = unwrapOutboundIn(data)
        for event in sent.read(buffer.readableBytesView) { report(.sent, event) }
        context.write(data, promise: promise)
    }
}
