/// The two things a batch exchange needs from a netlink socket. `NetlinkSocket` is the real
/// conformer; tests substitute one that fails at a chosen point.
protocol NetlinkTransport: AnyObject {
    /// Sends one datagram (possibly many messages). Throws `NetlinkSocketError` when the
    /// kernel did not take it: then none of its messages was processed.
    func send(_ datagram: [UInt8]) throws
    /// Receives the messages of one datagram. Throws `NetlinkSocketError` (ENOBUFS when the
    /// receive queue overflowed and messages were lost).
    func receive() throws -> [NetlinkMessage]
    /// Receives the messages of one or more small datagrams (acknowledgements), waiting for
    /// the first only. Throws like `receive`.
    func receiveAcknowledgements() throws -> [NetlinkMessage]
    /// The next sequence number (never 0).
    func nextSequence() -> UInt32
}

extension NetlinkTransport {
    func receiveAcknowledgements() throws -> [NetlinkMessage] { try receive() }
}

/// A system call on the netlink socket failed.
struct NetlinkSocketError: Error, Hashable, CustomStringConvertible {
    /// The call (`sendmsg`, `recvmsg`, `setsockopt(SO_RCVBUF)`).
    var call: String
    var errno: Int32
    /// Extra detail (a decoding problem, a truncated datagram).
    var detail: String?

    init(_ call: String, errno: Int32, detail: String? = nil) {
        self.call = call
        self.errno = errno
        self.detail = detail
    }

    var description: String {
        "\(call): \(ErrnoName.name(errno))" + (detail.map { ": \($0)" } ?? "")
    }
}
