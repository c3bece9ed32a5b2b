import CXfrm
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Exempts the sockets of the control connection from IPsec, as IKE daemons exempt theirs.
///
/// The controller reaches an agent over the very network whose SAs it manages. When the
/// controller's own host is a node and a peer lost its kernel state (re-imaged, rebooted), the
/// controller's policies still demand ESP toward that peer, with SAs the peer no longer has:
/// without an exemption the controller could never reach the agent that would restore them.
/// So every control socket — the controller's client sockets, the agent's listener and the
/// connections it accepts — carries per-socket bypass policies (`IP_XFRM_POLICY` /
/// `IPV6_XFRM_POLICY`: action allow, no template, in and out), which the kernel consults before
/// any policy in the SPD (strongSwan's `add_socket_bypass` does the same for IKE). They are set
/// before the socket connects or binds, so the handshake is exempt too.
///
/// The bypass lives on the socket, so it must outlast every segment of the connection. A side
/// that closes first and has no descriptor left (an orphan) would otherwise turn into a
/// timewait socket, which holds no policy, as soon as its FIN is acknowledged: the peer's own
/// FIN, a moment later, would meet the node's policies instead and count as a drop
/// (`XfrmInTmplMismatch`). `TCP_LINGER2` at its longest (120 s) keeps an orphan in FIN_WAIT2 a
/// full socket for its first 60 s, so the peer's FIN reaches the bypass and is acknowledged
/// from it; only a FIN retransmitted after that acknowledgement was lost can still meet a
/// timewait socket.
///
/// Only traffic of these sockets is exempt; nothing else between the hosts is. Setting them
/// needs CAP_NET_ADMIN, which a host that is a node has anyway (it writes its kernel's XFRM
/// state); a controller without it is on no node, where no policy of Meshward's can stand in
/// its way: the refusal is logged at debug level and the connection proceeds.
public enum ControlSocketBypass {
    /// `IP_XFRM_POLICY` and `IPV6_XFRM_POLICY` (`<linux/in.h>`, `<linux/in6.h>`).
    static let ipv4Option: CInt = 17
    static let ipv6Option: CInt = 35
    /// `TCP_LINGER2` (`<netinet/tcp.h>`) and the longest value the kernel takes, in seconds
    /// (`TCP_FIN_TIMEOUT_MAX`): above `TCP_TIMEWAIT_LEN` (60 s), so an orphan in FIN_WAIT2 stays
    /// a full socket until the peer's FIN or for 60 s.
    static let lingerOption: CInt = 8
    static let orphanFinWait2Seconds: CInt = 120
    /// `XFRM_POLICY_IN`, `XFRM_POLICY_OUT`; `XFRM_POLICY_ALLOW` is 0.
    static let directions: [UInt8] = [0, 1]

    /// The bypass policy for one direction of a socket of `family` (`AF_INET`, `AF_INET6`):
    /// an all-zero selector of that family (every address, port and protocol), action allow,
    /// no templates — the layout strongSwan hands the same socket option.
    static func policy(family: CInt, direction: UInt8) -> SocketPolicy {
        var info = xfrm_userpolicy_info()
        info.sel.family = UInt16(family)
        info.dir = direction
        info.action = 0
        return SocketPolicy(info: info)
    }

    /// The policy as the socket option's value: `xfrm_userpolicy_info`, nothing after it.
    struct SocketPolicy: @unchecked Sendable {
        var info: xfrm_userpolicy_info
    }

    /// Sets the in and out bypass on `channel`'s socket. Never fails the channel: a socket
    /// that cannot carry the bypass (no CAP_NET_ADMIN, no XFRM in the kernel) is logged and
    /// used as it is.
    ///
    /// - Parameter role: what the socket is, for the log ("control connection to b", "agent
    ///   listener").
    public static func install(on channel: any Channel, role: String, logger: Logger) -> EventLoopFuture<Void> {
        guard let sockets = channel as? any SocketOptionProvider else {
            logger.debug("control socket bypass: not a socket channel", metadata: ["socket": "\(role)"])
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        let domain: EventLoopFuture<CInt> = sockets.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_DOMAIN))
        return domain.flatMap { family -> EventLoopFuture<Void> in
            let level: CInt
            let option: CInt
            switch family {
            case AF_INET:
                (level, option) = (CInt(IPPROTO_IP), ipv4Option)
            case AF_INET6:
                (level, option) = (CInt(IPPROTO_IPV6), ipv6Option)
            default:
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            var done = sockets.unsafeSetSocketOption(
                level: SocketOptionLevel(IPPROTO_TCP), name: SocketOptionName(lingerOption),
                value: orphanFinWait2Seconds)
            for direction in directions {
                done = done.flatMap {
                    sockets.unsafeSetSocketOption(
                        level: SocketOptionLevel(level), name: SocketOptionName(option),
                        value: policy(family: family, direction: direction))
                }
            }
            return done
        }.flatMapError { error in
            let metadata: Logger.Metadata = ["socket": "\(role)", "error": "\(error)"]
            if let io = error as? IOError, io.errnoCode == EPERM {
                logger.debug(
                    "control socket bypass not permitted (no CAP_NET_ADMIN); proceeding without it", metadata: metadata)
            } else {
                logger.warning("control socket bypass not set; the connection proceeds without it", metadata: metadata)
            }
            return channel.eventLoop.makeSucceededVoidFuture()
        }
    }
}
