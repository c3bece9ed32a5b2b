/// An address with a prefix length, as kernel traffic selectors hold them (`198.18.1.10/32`).
public struct IPPrefix: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The address; bits past the prefix length are zero.
    public let address: IPAddress
    /// The prefix length, 0 through 32 (IPv4) or 128 (IPv6).
    public let length: Int

    /// Creates a prefix, clearing the bits past `length`; nil when `length` is out of range.
    public init?(address: IPAddress, length: Int) {
        guard length >= 0, length <= address.family.maximumPrefixLength else { return nil }
        var bytes = address.bytes
        for index in bytes.indices {
            let bitsBefore = index * 8
            if bitsBefore >= length {
                bytes[index] = 0
            } else if bitsBefore + 8 > length {
                bytes[index] &= UInt8(0xFF) << UInt8(8 - (length - bitsBefore))
            }
        }
        guard let masked = IPAddress(bytes: bytes) else { return nil }
        self.address = masked
        self.length = length
    }

    /// The prefix that holds exactly one address (`/32` or `/128`).
    public init(host: IPAddress) {
        self.address = host
        self.length = host.family.maximumPrefixLength
    }

    /// The prefix that matches every address of a family (`0.0.0.0/0` or `::/0`).
    public static func any(_ family: AddressFamily) -> IPPrefix {
        IPPrefix(host: .unspecified(family)).withLength(0)
    }

    private func withLength(_ newLength: Int) -> IPPrefix {
        IPPrefix(address: address, length: newLength) ?? self
    }

    /// The address family.
    public var family: AddressFamily { address.family }

    /// True when `candidate` lies inside this prefix.
    public func contains(_ candidate: IPAddress) -> Bool {
        guard candidate.family == family else { return false }
        return IPPrefix(address: candidate, length: length)?.address == address
    }

    public var description: String { "\(address)/\(length)" }

    /// A 64-bit mix of the prefix, for hashing compound keys.
    public var mixedBits: UInt64 { Bits.mix(address.mixedBits &+ UInt64(length)) }

    public func hash(into hasher: inout Hasher) { hasher.combine(mixedBits) }

    public static func < (lhs: IPPrefix, rhs: IPPrefix) -> Bool {
        (lhs.address, lhs.length) < (rhs.address, rhs.length)
    }
}
