import MeshwardCore

/// Builds the compact binary body of one simulated node: little-endian fixed-width integers,
/// and strings and arrays prefixed by their count as a `UInt32`.
///
/// The layout carries no field names or tags: `BinaryReader` must read the values back in the
/// order they were written, and the body's leading version byte says which order that is.
struct BinaryWriter {
    /// The bytes written so far.
    private(set) var bytes: [UInt8] = []

    /// A writer whose buffer holds `capacity` bytes before it grows.
    init(capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    mutating func write<Integer: FixedWidthInteger>(_ value: Integer) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// One byte: 1 for true, 0 for false.
    mutating func write(_ value: Bool) {
        bytes.append(value ? 1 : 0)
    }

    /// The number of elements (or UTF-8 bytes) that follow, as a `UInt32`.
    mutating func writeCount(_ count: Int) {
        write(UInt32(count))
    }

    /// The string's UTF-8 bytes, after their count.
    mutating func write(_ string: String) {
        var string = string
        string.withUTF8 { utf8 in
            writeCount(utf8.count)
            bytes.append(contentsOf: utf8)
        }
    }

    /// A presence byte, then the value when there is one.
    mutating func write<Integer: FixedWidthInteger>(_ value: Integer?) {
        write(value != nil)
        if let value { write(value) }
    }

    /// The family (4 or 6) in one byte, then the address's network-order bytes.
    mutating func write(_ address: IPAddress) {
        bytes.append(address.family == .ipv4 ? 4 : 6)
        bytes.append(contentsOf: address.bytes)
    }

    /// The address, then the prefix length in one byte.
    mutating func write(_ prefix: IPPrefix) {
        write(prefix.address)
        bytes.append(UInt8(prefix.length))
    }
}
