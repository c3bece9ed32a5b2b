import Logging
import NIOCore
import Synchronization

/// What the handshakes of one side's control connections said, as their observers read it off
/// the wire (`TLSHandshakeObserver`): the parameters the last connection negotiated, the alert a
/// peer last answered a hello with, and, on a server, every client refused by the policy, which
/// is logged (with the client's address and what it offered) and passed to `onRefusal`.
final class ControlChannelHandshakes: Sendable {
    private let role: String
    private let logger: Logger
    private let onRefusal: @Sendable (ControlChannelRefusal) -> Void
    private let onConnection: @Sendable () -> Void
    private let state = Mutex(State())

    private struct State {
        var negotiated: TLSNegotiation?
        var peerAlert: UInt8?
    }

    /// - Parameters:
    ///   - role: names the connections in the log (`agent listener`, `control connection to web-1`).
    ///   - onRefusal: called for each client a server refuses by the policy (metrics).
    ///   - onConnection: called for each new connection, before its handshake (metrics: a
    ///     server's accepted connections).
    init(
        role: String, logger: Logger, onRefusal: @escaping @Sendable (ControlChannelRefusal) -> Void = { _ in },
        onConnection: @escaping @Sendable () -> Void = {}
    ) {
        self.role = role
        self.logger = logger
        self.onRefusal = onRefusal
        self.onConnection = onConnection
    }

    /// What the last connection whose server answered negotiated; nil before one did.
    var negotiated: TLSNegotiation? { state.withLock { $0.negotiated } }

    /// The alert (its description code) with which the peer answered this side's last hello,
    /// refusing the handshake; nil when the last peer answered with a hello.
    var peerAlert: UInt8? { state.withLock { $0.peerAlert } }

    /// An observer for one new connection on `channel`.
    func observer(for channel: any Channel) -> TLSHandshakeObserver {
        onConnection()
        let peer = channel.remoteAddress.map { "\($0)" } ?? "an unknown address"
        return TLSHandshakeObserver { [self] direction, event in
            switch (direction, event) {
            case (.received, .clientHello(let offer)):
                if let refusal = ControlChannelTLS.refusal(of: offer) { refused(refusal, peer: peer) }
            case (.received, .notTLS):
                refused(.notTLS, peer: peer)
            case (_, .serverHello(let negotiation)):
                state.withLock {
                    $0.negotiated = negotiation
                    $0.peerAlert = nil
                }
                logger.debug(
                    "TLS negotiated",
                    metadata: [
                        "connection": "\(role)", "peer": "\(peer)", "tls.version": "\(negotiation.versionName)",
                        "tls.key_exchange": "\(negotiation.groupName)",
                    ])
            case (.received, .alert(let description)):
                state.withLock { $0.peerAlert = description }
            default:
                break
            }
        }
    }

    private func refused(_ refusal: ControlChannelRefusal, peer: String) {
        logger.warning(
            "refused a TLS handshake",
            metadata: ["connection": "\(role)", "peer": "\(peer)", "reason": "\(refusal)"])
        onRefusal(refusal)
    }
}
