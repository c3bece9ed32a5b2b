/// A growing byte buffer that netlink messages and their attributes are written into.
///
/// Host-order fields (`nlmsghdr`, lengths, reqids) are written little- or big-endian as the
/// machine is; fields the kernel declares `__be16`/`__be32` (ports, SPIs) go through the
/// `bigEndian` writers. Every message and attribute is padded to 4 bytes, as `NLMSG_ALIGN`
/// and `NLA_ALIGN` demand.
struct NetlinkBuffer {
    private(set) var bytes: [UInt8]

    init(capacity: Int = 4096) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    var count: Int { bytes.count }

    /// Appends `count` zero bytes and returns the offset of the first.
    @discardableResult
    mutating func appendZeros(_ count: Int) -> Int {
        let offset = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: count))
        return offset
    }

    /// Pads with zeros to the next multiple of 4.
    mutating func align() {
        let padding = (4 - bytes.count % 4) % 4
        if padding > 0 { appendZeros(padding) }
    }

    mutating func setUInt8(_ value: UInt8, at offset: Int) {
        bytes[offset] = value
    }

    mutating func setUInt16(_ value: UInt16, at offset: Int) {
        withUnsafeBytes(of: value) { source in
            for index in 0..<2 { bytes[offset + index] = source[index] }
        }
    }

    mutating func setUInt32(_ value: UInt32, at offset: Int) {
        withUnsafeBytes(of: value) { source in
            for index in 0..<4 { bytes[offset + index] = source[index] }
        }
    }

    mutating func setUInt64(_ value: UInt64, at offset: Int) {
        withUnsafeBytes(of: value) { source in
            for index in 0..<8 { bytes[offset + index] = source[index] }
        }
    }

    mutating func setBigEndianUInt16(_ value: UInt16, at offset: Int) {
        setUInt16(value.bigEndian, at: offset)
    }

    mutating func setBigEndianUInt32(_ value: UInt32, at offset: Int) {
        setUInt32(value.bigEndian, at: offset)
    }

    mutating func setBytes(_ source: some Collection<UInt8>, at offset: Int) {
        var index = offset
        for byte in source {
            bytes[index] = byte
            index += 1
        }
    }

    /// Writes one netlink message: the 16-byte header, then whatever `body` appends, then the
    /// length patched in and padding to 4 bytes.
    mutating func appendMessage(
        type: UInt16, flags: UInt16, sequence: UInt32,
        body: (inout NetlinkBuffer) -> Void
    ) {
        let start = appendZeros(NetlinkHeader.size)
        body(&self)
        setUInt32(UInt32(bytes.count - start), at: start)
        setUInt16(type, at: start + 4)
        setUInt16(flags, at: start + 6)
        setUInt32(sequence, at: start + 8)
        align()
    }

    /// Writes one attribute: the 4-byte `nlattr` header, the payload `body` appends, then the
    /// length patched in and padding to 4 bytes.
    mutating func appendAttribute(type: UInt16, body: (inout NetlinkBuffer) -> Void) {
        let start = appendZeros(4)
        body(&self)
        setUInt16(UInt16(truncatingIfNeeded: bytes.count - start), at: start)
        setUInt16(type, at: start + 2)
        align()
    }

    /// Removes everything from `count` on, keeping the storage.
    mutating func truncate(to count: Int) {
        bytes.removeSubrange(count...)
    }

    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
    }
}
