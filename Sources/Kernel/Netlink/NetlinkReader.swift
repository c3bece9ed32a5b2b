/// A bounds-checked view of bytes received from the kernel.
///
/// Every read names what it is reading and throws `NetlinkDecodingError` when the bytes are too
/// short; no read can trap.
struct NetlinkReader {
    /// The bytes of the view; indices are relative to `start`.
    let bytes: [UInt8]
    let start: Int
    let count: Int
    /// What the view holds, for error messages.
    let context: String

    init(_ bytes: [UInt8], context: String) {
        self.bytes = bytes
        self.start = 0
        self.count = bytes.count
        self.context = context
    }

    private init(bytes: [UInt8], start: Int, count: Int, context: String) {
        self.bytes = bytes
        self.start = start
        self.count = count
        self.context = context
    }

    /// Throws unless `length` bytes at `offset` lie inside the view.
    func require(_ offset: Int, _ length: Int, _ what: @autoclosure () -> String) throws {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else {
            throw NetlinkDecodingError(context, "\(what()) needs \(length) bytes at offset \(offset), have \(count)")
        }
    }

    /// The sub-view of `length` bytes at `offset`.
    func slice(_ offset: Int, _ length: Int, context newContext: String) throws -> NetlinkReader {
        try require(offset, length, newContext)
        return NetlinkReader(bytes: bytes, start: start + offset, count: length, context: newContext)
    }

    /// The sub-view from `offset` to the end.
    func tail(from offset: Int, context newContext: String) throws -> NetlinkReader {
        try require(offset, 0, newContext)
        return NetlinkReader(bytes: bytes, start: start + offset, count: count - offset, context: newContext)
    }

    func uint8(_ offset: Int, _ what: String) throws -> UInt8 {
        try require(offset, 1, what)
        return bytes[start + offset]
    }

    func uint16(_ offset: Int, _ what: String) throws -> UInt16 {
        try require(offset, 2, what)
        return load(offset, as: UInt16.self)
    }

    func uint32(_ offset: Int, _ what: String) throws -> UInt32 {
        try require(offset, 4, what)
        return load(offset, as: UInt32.self)
    }

    /// A native-order integer; the caller has checked the bounds.
    private func load<T: FixedWidthInteger>(_ offset: Int, as type: T.Type) -> T {
        bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: start + offset, as: T.self) }
    }

    func int32(_ offset: Int, _ what: String) throws -> Int32 {
        Int32(bitPattern: try uint32(offset, what))
    }

    func uint64(_ offset: Int, _ what: String) throws -> UInt64 {
        try require(offset, 8, what)
        return load(offset, as: UInt64.self)
    }

    func bigEndianUInt16(_ offset: Int, _ what: String) throws -> UInt16 {
        UInt16(bigEndian: try uint16(offset, what))
    }

    func bigEndianUInt32(_ offset: Int, _ what: String) throws -> UInt32 {
        UInt32(bigEndian: try uint32(offset, what))
    }

    func byteArray(_ offset: Int, _ length: Int, _ what: String) throws -> [UInt8] {
        try require(offset, length, what)
        return Array(bytes[(start + offset)..<(start + offset + length)])
    }

    /// A NUL-terminated string in a fixed field of `length` bytes (`alg_name[64]`).
    func fixedString(_ offset: Int, _ length: Int, _ what: String) throws -> String {
        let field = try byteArray(offset, length, what)
        return String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }
}
