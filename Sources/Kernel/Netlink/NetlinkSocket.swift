import CXfrm

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A blocking `NETLINK_XFRM` socket, bound, with extended acks, capped acks and large buffers.
///
/// Not thread-safe: its owner serialises every call (`NetlinkKernel` runs them on its own
/// dispatch queue, never on the Swift cooperative pool). System calls interrupted by a signal
/// (EINTR) are retried.
final class NetlinkSocket: NetlinkTransport {
    let descriptor: Int32
    private var sequence: UInt32
    private var receiveBuffer: [UInt8]
    /// `acknowledgementSlots` slots of `acknowledgementSlotBytes` each, for `recvmmsg`.
    private var acknowledgementBuffer: [UInt8]

    /// The receive queue the socket asks for: acknowledgements of a whole batch wait in it.
    static let receiveBufferBytes: Int32 = 8 << 20
    static let sendBufferBytes: Int32 = 4 << 20
    /// The largest datagram `receive` accepts (a dump skb is at most a few pages).
    static let largestDatagram = 1 << 20
    /// Acknowledgements received per `recvmmsg` at most, and the room for each: a capped ack
    /// with the kernel's text is well under a kilobyte.
    static let acknowledgementSlots = 128
    static let acknowledgementSlotBytes = 4096
    /// How long a receive waits before the socket is taken for dead.
    static let receiveTimeoutSeconds = 30

    private static let solNetlink: Int32 = 270  // SOL_NETLINK
    private static let optionCapAck: Int32 = 10  // NETLINK_CAP_ACK
    private static let optionExtAck: Int32 = 11  // NETLINK_EXT_ACK

    /// Binds `descriptor` (an `AF_NETLINK` socket) to the kernel's multicast `groups` (0: none);
    /// when that fails, closes it and throws an error that names `step`.
    static func bindToGroups(_ descriptor: Int32, groups: UInt32, step: String) throws {
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        address.nl_groups = groups
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
            }
        }
        guard bound == 0 else {
            let code = errno
            close(descriptor)
            throw NetlinkSocketError(step, errno: code)
        }
    }

    /// Takes ownership of `descriptor` (an `AF_NETLINK` socket), binds it and sets its options.
    /// Closes it and throws when binding fails.
    init(descriptor: Int32) throws {
        // Bound before `self` is whole: an initializer that throws after that runs `deinit`,
        // which would close the descriptor a second time.
        try Self.bindToGroups(descriptor, groups: 0, step: "bind(AF_NETLINK)")
        self.descriptor = descriptor
        self.sequence = UInt32.random(in: 1...0x7FFF_FFFF)
        self.receiveBuffer = [UInt8](repeating: 0, count: Self.largestDatagram)
        self.acknowledgementBuffer = [UInt8](
            repeating: 0, count: Self.acknowledgementSlots * Self.acknowledgementSlotBytes)
        // Privileged callers can exceed net.core.rmem_max; others fall back to the capped size.
        if !setOption(SOL_SOCKET, SO_RCVBUFFORCE, Self.receiveBufferBytes) {
            _ = setOption(SOL_SOCKET, SO_RCVBUF, Self.receiveBufferBytes)
        }
        if !setOption(SOL_SOCKET, SO_SNDBUFFORCE, Self.sendBufferBytes) {
            _ = setOption(SOL_SOCKET, SO_SNDBUF, Self.sendBufferBytes)
        }
        // No receive may block forever: the kernel answers during sendmsg, so a silent socket
        // after this long is a dead one.
        var timeout = timeval(tv_sec: Self.receiveTimeoutSeconds, tv_usec: 0)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // Both are best effort: kernels before 4.12 lack extended acks; replies still decode.
        _ = setOption(Self.solNetlink, Self.optionExtAck, 1)
        _ = setOption(Self.solNetlink, Self.optionCapAck, 1)
    }

    deinit {
        close(descriptor)
    }

    /// Sets how long one receive may wait (at least a millisecond).
    func setReceiveTimeout(_ duration: Duration) {
        let parts = max(duration, .milliseconds(1)).components
        var timeout = timeval(
            tv_sec: Int(parts.seconds), tv_usec: Int(parts.attoseconds / 1_000_000_000_000))
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    private func setOption(_ level: Int32, _ name: Int32, _ value: Int32) -> Bool {
        var value = value
        return setsockopt(descriptor, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0
    }

    func nextSequence() -> UInt32 {
        sequence = sequence == UInt32.max ? 1 : sequence + 1
        return sequence
    }

    func send(_ datagram: [UInt8]) throws {
        var destination = sockaddr_nl()
        destination.nl_family = sa_family_t(AF_NETLINK)
        while true {
            let sent = datagram.withUnsafeBytes { bytes in
                withUnsafePointer(to: &destination) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(
                            descriptor, bytes.baseAddress, bytes.count, 0, $0,
                            socklen_t(MemoryLayout<sockaddr_nl>.size))
                    }
                }
            }
            if sent >= 0 {
                guard sent == datagram.count else {
                    throw NetlinkSocketError(
                        "sendmsg", errno: EMSGSIZE,
                        detail: "sent \(sent) of \(datagram.count) bytes")
                }
                return
            }
            let code = errno
            if code == EINTR { continue }
            throw NetlinkSocketError("sendmsg", errno: code)
        }
    }

    func receive() throws -> [NetlinkMessage] {
        while true {
            var flags: Int32 = 0
            let received = receiveBuffer.withUnsafeMutableBytes { buffer -> Int in
                var vector = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var header = msghdr()
                    header.msg_iov = vectorPointer
                    header.msg_iovlen = 1
                    let count = recvmsg(descriptor, &header, 0)
                    flags = header.msg_flags
                    return count
                }
            }
            if received < 0 {
                let code = errno
                if code == EINTR { continue }
                throw NetlinkSocketError("recvmsg", errno: code)
            }
            guard flags & Int32(MSG_TRUNC) == 0 else {
                throw NetlinkSocketError(
                    "recvmsg", errno: EMSGSIZE,
                    detail: "a datagram exceeded \(Self.largestDatagram) bytes")
            }
            do {
                return try NetlinkMessage.split(Array(receiveBuffer[0..<received]))
            } catch let error as NetlinkDecodingError {
                throw NetlinkSocketError("recvmsg", errno: EPROTO, detail: error.description)
            }
        }
    }

    /// Receives up to `acknowledgementSlots` datagrams with one `recvmmsg`, waiting for the
    /// first only (`MSG_WAITFORONE`): one system call for many acknowledgements.
    func receiveAcknowledgements() throws -> [NetlinkMessage] {
        let slots = Self.acknowledgementSlots
        let slotBytes = Self.acknowledgementSlotBytes
        while true {
            var lengths = [UInt32](repeating: 0, count: slots)
            var truncatedFlag: Int32 = 0
            let count = acknowledgementBuffer.withUnsafeMutableBytes { buffer in
                mw_receive_many(descriptor, buffer.baseAddress, slotBytes, UInt32(slots), &lengths, &truncatedFlag)
            }
            let truncated = truncatedFlag != 0
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw NetlinkSocketError("recvmmsg", errno: code)
            }
            guard !truncated else {
                throw NetlinkSocketError(
                    "recvmmsg", errno: EMSGSIZE, detail: "an acknowledgement exceeded \(slotBytes) bytes")
            }
            var messages: [NetlinkMessage] = []
            do {
                for index in 0..<Int(count) {
                    let start = index * slotBytes
                    messages += try NetlinkMessage.split(
                        Array(acknowledgementBuffer[start..<(start + Int(lengths[index]))]))
                }
            } catch let error as NetlinkDecodingError {
                throw NetlinkSocketError("recvmmsg", errno: EPROTO, detail: error.description)
            }
            return messages
        }
    }
}
