/// A `struct nlmsghdr` and the constants of the netlink framing.
struct NetlinkHeader: Hashable {
    /// `sizeof(struct nlmsghdr)`.
    static let size = 16

    var length: UInt32
    var type: UInt16
    var flags: UInt16
    var sequence: UInt32
    var portID: UInt32

    // Message types of the framing itself.
    static let noop: UInt16 = 1  // NLMSG_NOOP
    static let error: UInt16 = 2  // NLMSG_ERROR
    static let done: UInt16 = 3  // NLMSG_DONE
    static let overrun: UInt16 = 4  // NLMSG_OVERRUN

    // Request flags.
    static let request: UInt16 = 0x1  // NLM_F_REQUEST
    static let multi: UInt16 = 0x2  // NLM_F_MULTI
    static let ack: UInt16 = 0x4  // NLM_F_ACK
    static let dumpInterrupted: UInt16 = 0x10  // NLM_F_DUMP_INTR
    static let dump: UInt16 = 0x300  // NLM_F_ROOT | NLM_F_MATCH
    // Flags of an NLMSG_ERROR reply.
    static let capped: UInt16 = 0x100  // NLM_F_CAPPED
    static let acknowledgementTLVs: UInt16 = 0x200  // NLM_F_ACK_TLVS

    init(length: UInt32, type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32) {
        self.length = length
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
    }

    init(_ reader: NetlinkReader, at offset: Int) throws {
        length = try reader.uint32(offset, "nlmsg_len")
        type = try reader.uint16(offset + 4, "nlmsg_type")
        flags = try reader.uint16(offset + 6, "nlmsg_flags")
        sequence = try reader.uint32(offset + 8, "nlmsg_seq")
        portID = try reader.uint32(offset + 12, "nlmsg_pid")
    }
}

/// One message received from the kernel: its header and a reader over its payload.
struct NetlinkMessage {
    var header: NetlinkHeader
    var payload: NetlinkReader

    /// Splits a datagram into its messages. Throws on a length that is shorter than a header or
    /// that runs past the datagram.
    static func split(_ datagram: [UInt8]) throws -> [NetlinkMessage] {
        let reader = NetlinkReader(datagram, context: "netlink datagram")
        var messages: [NetlinkMessage] = []
        var offset = 0
        while datagram.count - offset >= NetlinkHeader.size {
            let header = try NetlinkHeader(reader, at: offset)
            let length = Int(header.length)
            guard length >= NetlinkHeader.size else {
                throw NetlinkDecodingError("nlmsghdr", "length \(length) is shorter than the header")
            }
            guard length <= datagram.count - offset else {
                throw NetlinkDecodingError(
                    "nlmsghdr", "length \(length) runs past the datagram (\(datagram.count - offset) bytes left)")
            }
            let payload = try reader.slice(
                offset + NetlinkHeader.size, length - NetlinkHeader.size,
                context: "message type \(header.type)")
            messages.append(NetlinkMessage(header: header, payload: payload))
            offset += (length + 3) & ~3
        }
        guard offset >= datagram.count else {
            throw NetlinkDecodingError(
                "netlink datagram", "\(datagram.count - offset) trailing bytes are not a message")
        }
        return messages
    }
}

/// The attributes (`struct nlattr` TLVs) that follow a fixed structure in a message.
struct NetlinkAttributes {
    /// Attribute type -> payload. A repeated type keeps the first occurrence, as the kernel's
    /// parser would reject duplicates it cares about anyway.
    private(set) var values: [UInt16: NetlinkReader] = [:]

    /// `NLA_TYPE_MASK`: the nested and byte-order flags are not part of the type.
    static let typeMask: UInt16 = 0x3FFF

    /// Parses every attribute of `reader`. Throws on a length below 4 or past the end.
    init(_ reader: NetlinkReader) throws {
        var offset = 0
        while reader.count - offset >= 4 {
            let length = Int(try reader.uint16(offset, "nla_len"))
            let type = try reader.uint16(offset + 2, "nla_type") & Self.typeMask
            guard length >= 4 else {
                throw NetlinkDecodingError(reader.context, "attribute \(type) has length \(length)")
            }
            let payload = try reader.slice(offset + 4, length - 4, context: "attribute \(type)")
            if values[type] == nil { values[type] = payload }
            offset += (length + 3) & ~3
        }
        guard offset >= reader.count else {
            throw NetlinkDecodingError(reader.context, "\(reader.count - offset) trailing bytes are not an attribute")
        }
    }

    subscript(type: UInt16) -> NetlinkReader? { values[type] }
}
