import MeshwardCore

/// Reads back what `BinaryWriter` wrote, in the same order, from bytes it does not copy.
///
/// Every read checks that the bytes it needs are there and that what it reads is a value the
/// writer could have written, so a truncated or garbled body is refused with the offset where
/// it went wrong instead of being read as a different fleet.
struct BinaryReader {
    private let buffer: UnsafeRawBufferPointer
    /// Where the next read starts.
    private(set) var offset = 0

    /// A reader of `buffer`, which must stay valid while the reader is used.
    init(_ buffer: UnsafeRawBufferPointer) {
        self.buffer = buffer
    }

    mutating func read<Integer: FixedWidthInteger>(
        _: Integer.Type = Integer.self
    ) throws(BinaryDecodingError)
        -> Integer
    {
        let size = MemoryLayout<Integer>.size
        try require(size)
        let value = buffer.loadUnaligned(fromByteOffset: offset, as: Integer.self)
        offset += size
        return Integer(littleEndian: value)
    }

    mutating func readBool() throws(BinaryDecodingError) -> Bool {
        let start = offset
        switch try read(UInt8.self) {
        case 0: return false
        case 1: return true
        case let other: throw .invalid("\(other) where a flag (0 or 1) belongs", offset: start)
        }
    }

    /// A count written by `writeCount`, refused when the rest of the body could not hold that
    /// many elements of at least `minimumElementSize` bytes each (so garbage never reserves
    /// memory it will not fill).
    mutating func readCount(minimumElementSize: Int) throws(BinaryDecodingError) -> Int {
        let start = offset
        let count = Int(try read(UInt32.self))
        guard count * max(minimumElementSize, 1) <= buffer.count - offset else {
            throw .invalid(
                "a count of \(count) that the remaining \(buffer.count - offset) bytes cannot hold", offset: start)
        }
        return count
    }

    mutating func readString() throws(BinaryDecodingError) -> String {
        let start = offset
        let count = try readCount(minimumElementSize: 1)
        let utf8 = UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + count])
        guard let string = String(validating: utf8, as: UTF8.self) else {
            throw .invalid("a string that is not UTF-8", offset: start)
        }
        offset += count
        return string
    }

    /// A value written by `BinaryWriter.write(_: Integer?)`.
    mutating func readOptional<Integer: FixedWidthInteger>(
        _: Integer.Type = Integer.self
    )
        throws(BinaryDecodingError) -> Integer?
    {
        try readBool() ? try read(Integer.self) : nil
    }

    mutating func readAddress() throws(BinaryDecodingError) -> IPAddress {
        let start = offset
        let length: Int
        switch try read(UInt8.self) {
        case 4: length = 4
        case 6: length = 16
        case let other: throw .invalid("address family \(other) (4 or 6 expected)", offset: start)
        }
        try require(length)
        let bytes = [UInt8](UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + length]))
        offset += length
        guard let address = IPAddress(bytes: bytes) else { throw .invalid("an address", offset: start) }
        return address
    }

    mutating func readPrefix() throws(BinaryDecodingError) -> IPPrefix {
        let start = offset
        let address = try readAddress()
        let length = Int(try read(UInt8.self))
        guard let prefix = IPPrefix(address: address, length: length) else {
            throw .invalid("prefix length \(length) for \(address)", offset: start)
        }
        return prefix
    }

    /// Refuses bytes left over after the last value: a body is exactly what was written.
    func requireEnd() throws(BinaryDecodingError) {
        guard offset == buffer.count else {
            throw .invalid("\(buffer.count - offset) bytes after the end of the encoded value", offset: offset)
        }
    }

    private func require(_ size: Int) throws(BinaryDecodingError) {
        guard buffer.count - offset >= size else {
            throw .truncated(needed: offset + size, available: buffer.count)
        }
    }
}

/// Why `BinaryReader` could not read a value.
struct BinaryDecodingError: Error, Sendable, CustomStringConvertible {
    let description: String

    /// The body ends before a value it announces.
    static func truncated(needed: Int, available: Int) -> BinaryDecodingError {
        BinaryDecodingError(description: "it is truncated: \(available) bytes where at least \(needed) are needed")
    }

    /// The bytes at `offset` hold `what`, which no writer produces.
    static func invalid(_ what: String, offset: Int) -> BinaryDecodingError {
        BinaryDecodingError(description: "it holds \(what) at byte \(offset)")
    }
}
