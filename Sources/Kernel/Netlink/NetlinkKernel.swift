import CXfrm
import Dispatch
import Logging
import MeshwardCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A node's security databases reached over `NETLINK_XFRM`, in the controller's own network
/// namespace or in a named one.
///
/// The socket is created inside the target namespace (on a short-lived thread of its own that
/// switches back before it ends) and stays there, as sockets do; so does the open
/// `xfrm_stat` file whose counters `observe` reports. Every blocking call runs on this kernel's
/// own serial dispatch queue, never on the Swift cooperative pool, and no receive waits longer
/// than 30 seconds.
///
/// Ownership: `observe` reports only SAs whose reqid is `reqid` and policies whose single ESP
/// template carries it. `apply` refuses, without sending, an add or update of another reqid
/// (EPERM), an update of a selector a foreign policy holds (EEXIST), and a delete of anything
/// the last observation did not report as owned (ESRCH or ENOENT, as for a missing object). An
/// update of a policy not known as owned travels as NEWPOLICY, which the kernel refuses where
/// anything holds the selector. Meshward never touches a foreign object.
public final class NetlinkKernel: WatchedKernel {
    /// The node's name, for messages and log metadata.
    public let node: String
    /// The reqid that marks Meshward's objects.
    public let reqid: Reqid
    /// Where the socket lives: `.local` or `.namespace(name)`.
    public let endpoint: NodeEndpoint

    let logger: Logger
    let queue: DispatchQueue
    let session: Mutex<NetlinkSession>
    /// The watch, once `startWatching()` made it.
    let watchState = Mutex(WatchState.unwatched)

    /// Whether the kernel is watched.
    enum WatchState {
        case unwatched
        case watching(NetlinkWatch)
    }

    /// The most messages one `sendmsg` carries.
    static let messagesPerDatagram = 256
    /// The most bytes one `sendmsg` carries.
    static let bytesPerDatagram = 64 * 1024

    /// Opens the socket for `node` at `endpoint`.
    ///
    /// Blocks briefly (the namespace switch happens on a thread of its own). Throws
    /// `KernelError.unreachable` when the namespace does not exist or the socket cannot be
    /// opened, and for `.sim`, which this backend cannot serve (a programming error).
    public init(node: String, endpoint: NodeEndpoint, reqid: Reqid, logger: Logger) throws {
        self.node = node
        self.reqid = reqid
        self.endpoint = endpoint
        self.logger = logger
        let opened: mw_netns_open_result
        switch endpoint {
        case .sim, .agent:
            throw KernelError.unreachable(
                node: node,
                reason: "the netlink backend cannot serve endpoint `\(endpoint)`; it opens `local` and `netns:`")
        case .local:
            opened = mw_open_in_netns(nil, NETLINK_XFRM)
        case .namespace(let name):
            opened = mw_open_in_netns("/var/run/netns/\(name)", NETLINK_XFRM)
        }
        guard opened.error == 0, opened.socket_fd >= 0 else {
            let step = opened.failed_step.map { String(cString: $0) } ?? "open"
            throw KernelError.unreachable(
                node: node,
                reason: "\(endpoint): \(step): \(ErrnoName.name(opened.error)): \(Self.errorText(opened.error))")
        }
        let socket: NetlinkSocket
        do {
            socket = try NetlinkSocket(descriptor: opened.socket_fd)
        } catch {
            if opened.statistics_fd >= 0 { Glibc.close(opened.statistics_fd) }
            throw KernelError.unreachable(node: node, reason: "\(endpoint): \(error)")
        }
        self.session = Mutex(NetlinkSession(socket: socket, statisticsDescriptor: opened.statistics_fd))
        self.queue = DispatchQueue(label: "meshward.netlink.\(node)")
        logger.debug("opened XFRM netlink socket", metadata: ["node": "\(node)", "endpoint": "\(endpoint)"])
    }

    deinit {
        if case .watching(let watch) = watchState.withLock({ $0 }) { watch.stop(reason: "the kernel was closed") }
    }

    /// Runs `body` on this kernel's queue under its lock and resumes the caller with the result.
    /// No receive of `body` waits past `deadline` (nor longer than 30 seconds); a call whose
    /// deadline passed while it waited for the queue fails without touching the socket.
    func perform<T: Sendable>(
        until deadline: ContinuousClock.Instant, _ body: @escaping @Sendable (NetlinkSession) throws -> T
    ) async throws -> T {
        let node = self.node
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(
                    with: Result {
                        try self.session.withLock { session in
                            let remaining = deadline - .now
                            guard remaining > .zero else {
                                throw KernelError.unreachable(
                                    node: node, reason: "its deadline passed before the netlink socket was free")
                            }
                            session.socket.setReceiveTimeout(
                                min(remaining, .seconds(NetlinkSocket.receiveTimeoutSeconds)))
                            return try body(session)
                        }
                    })
            }
        }
    }

    static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
