import CXfrm

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A `NETLINK_XFRM` socket subscribed to the XFRM multicast groups a watch follows
/// (`XFRMNLGRP_SA`, `XFRMNLGRP_POLICY`, `XFRMNLGRP_EXPIRE`), with a large receive queue, read
/// without blocking. Subscribing needs `CAP_NET_ADMIN` in the namespace.
///
/// Not thread-safe: `NetlinkWatch` reads it only under its lock.
final class NetlinkEventSocket {
    let descriptor: Int32
    private var buffer: [UInt8]

    /// The receive queue asked for: a batch of thousands of changes may arrive while the
    /// reader is busy. Privileged callers get it whatever `net.core.rmem_max` says.
    static let receiveBufferBytes: Int32 = 32 << 20
    /// One event is one small datagram (an SA or a policy with its attributes).
    static let largestDatagram = 64 * 1024

    /// Opens the socket in `namespacePath` (nil: this process's namespace), subscribed.
    /// Throws `NetlinkSocketError` naming the step that failed.
    init(namespacePath: String?, receiveBufferBytes: Int32 = receiveBufferBytes) throws {
        let opened = namespacePath.map { mw_open_in_netns($0, NETLINK_XFRM) } ?? mw_open_in_netns(nil, NETLINK_XFRM)
        if opened.statistics_fd >= 0 { close(opened.statistics_fd) }
        guard opened.error == 0, opened.socket_fd >= 0 else {
            let step = opened.failed_step.map { String(cString: $0) } ?? "open"
            throw NetlinkSocketError(step, errno: opened.error)
        }
        var size = receiveBufferBytes
        if setsockopt(opened.socket_fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            _ = setsockopt(opened.socket_fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        // Bound before `self` is whole: an initializer that throws after that runs `deinit`,
        // which would close the descriptor a second time.
        try NetlinkSocket.bindToGroups(
            opened.socket_fd, groups: XfrmCodec.watchedGroups,
            step: "bind(AF_NETLINK) to the XFRM SA, policy and expire groups")
        descriptor = opened.socket_fd
        buffer = [UInt8](repeating: 0, count: Self.largestDatagram)
    }

    deinit {
        close(descriptor)
    }

    /// The messages of the next queued datagram; nil when none is queued. Throws
    /// `NetlinkSocketError` (ENOBUFS: the queue overflowed and events were lost).
    func receiveQueued() throws -> [NetlinkMessage]? {
        while true {
            var flags: Int32 = 0
            let received = buffer.withUnsafeMutableBytes { bytes -> Int in
                var vector = iovec(iov_base: bytes.baseAddress, iov_len: bytes.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var header = msghdr()
                    header.msg_iov = vectorPointer
                    header.msg_iovlen = 1
                    let count = recvmsg(descriptor, &header, Int32(MSG_DONTWAIT))
                    flags = header.msg_flags
                    return count
                }
            }
            if received < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK { return nil }
                throw NetlinkSocketError("recvmsg", errno: code)
            }
            guard flags & Int32(MSG_TRUNC) == 0 else {
                throw NetlinkSocketError(
                    "recvmsg", errno: EMSGSIZE, detail: "an event exceeded \(Self.largestDatagram) bytes")
            }
            do {
                return try NetlinkMessage.split(Array(buffer[0..<received]))
            } catch let error as NetlinkDecodingError {
                throw NetlinkSocketError("recvmsg", errno: EPROTO, detail: error.description)
            }
        }
    }

    /// Discards every queued event: a dump is about to supersede them. Returns true when the
    /// queue had overflowed (events were lost).
    func discardQueued() throws -> Bool {
        var lost = false
        while true {
            do {
                guard try receiveQueued() != nil else { return lost }
            } catch let error as NetlinkSocketError where error.errno == ENOBUFS {
                lost = true
            }
        }
    }
}
