/// An `NLMSG_ERROR` reply: the errno (0 for success) and the kernel's extended-ack text.
struct NetlinkAcknowledgement: Hashable {
    /// The sequence number of the request it answers.
    var sequence: UInt32
    /// 0 on success, else the positive errno.
    var errno: Int32
    /// `NLMSGERR_ATTR_MSG`, when the kernel gave one.
    var message: String?

    init(sequence: UInt32, errno: Int32, message: String?) {
        self.sequence = sequence
        self.errno = errno
        self.message = message
    }

    private static let attributeMessage: UInt16 = 1  // NLMSGERR_ATTR_MSG

    /// Decodes an `NLMSG_ERROR` message: `struct nlmsgerr` (the error, then the request's
    /// header, then its payload unless the reply is capped), then the extended-ack TLVs.
    init(_ message: NetlinkMessage) throws {
        let payload = message.payload
        let error = try payload.int32(0, "nlmsgerr.error")
        let original = try NetlinkHeader(payload, at: 4)
        var tlvOffset = 4 + NetlinkHeader.size
        if message.header.flags & NetlinkHeader.capped == 0 {
            tlvOffset = 4 + Int(original.length)
        }
        var text: String?
        if message.header.flags & NetlinkHeader.acknowledgementTLVs != 0, tlvOffset < payload.count {
            let attributes = try NetlinkAttributes(
                try payload.tail(from: (tlvOffset + 3) & ~3, context: "extended ack"))
            if let field = attributes[Self.attributeMessage] {
                let bytes = try field.byteArray(0, field.count, "NLMSGERR_ATTR_MSG")
                text = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
        self.sequence = message.header.sequence
        self.errno = error == Int32.min ? Int32.max : -error
        self.message = text
    }
}
