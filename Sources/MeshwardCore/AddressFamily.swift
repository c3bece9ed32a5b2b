/// An IP address family. Channels, SAs and policies are each of exactly one family.
public enum AddressFamily: String, Sendable, Hashable, Codable, CaseIterable, Comparable, CustomStringConvertible {
    case ipv4
    case ipv6

    /// The number of bytes in an address of this family.
    public var addressLength: Int { self == .ipv4 ? 4 : 16 }

    /// The largest prefix length of this family (32 or 128).
    public var maximumPrefixLength: Int { addressLength * 8 }

    public var description: String { rawValue }

    public static func < (lhs: AddressFamily, rhs: AddressFamily) -> Bool {
        lhs == .ipv4 && rhs == .ipv6
    }
}
