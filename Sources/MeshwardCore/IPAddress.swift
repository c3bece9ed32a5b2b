#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address, held as its network-order bytes.
///
/// Parsing accepts the textual forms `inet_pton` accepts and nothing else: no zone suffix
/// (`fe80::1%eth0`), no prefix length, no surrounding spaces. Formatting gives the canonical
/// form (`inet_ntop`), so two spellings of one address print the same.
public struct IPAddress: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The address family.
    public let family: AddressFamily
    /// The address as two big-endian halves, kept inline so that an address never allocates:
    /// an IPv4 address sits in the top 32 bits of `high`, and `low` is 0.
    private let high: UInt64
    private let low: UInt64

    /// The address in network byte order: 4 bytes for IPv4, 16 for IPv6.
    public var bytes: [UInt8] { withNetworkOrderBytes { Array($0) } }

    /// Calls `body` with the address in network byte order (4 bytes for IPv4, 16 for IPv6),
    /// held on the stack: no array is made, where millions of addresses are hashed or sealed.
    public func withNetworkOrderBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        var words = (high.bigEndian, low.bigEndian)
        let length = family.addressLength
        return try withUnsafeBytes(of: &words) { all in
            try body(UnsafeRawBufferPointer(rebasing: all.prefix(length)))
        }
    }

    /// Creates an address from its network-order bytes; nil when the count fits neither family.
    public init?(bytes: [UInt8]) {
        guard let address = bytes.withUnsafeBytes({ IPAddress(networkOrder: $0) }) else { return nil }
        self = address
    }

    /// Creates an address from network-order bytes in place (a column read from a database, a
    /// netlink attribute): nothing is copied. Nil when the count fits neither family.
    public init?(networkOrder bytes: UnsafeRawBufferPointer) {
        switch bytes.count {
        case 4: family = .ipv4
        case 16: family = .ipv6
        default: return nil
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 {
                high |= UInt64(byte) << (56 - 8 * UInt64(index))
            } else {
                low |= UInt64(byte) << (56 - 8 * UInt64(index - 8))
            }
        }
        self.high = high
        self.low = low
    }

    /// Parses a textual address; nil when the text is not exactly one IPv4 or IPv6 address.
    public init?(_ text: String) {
        if text.contains(":") {
            var storage = in6_addr()
            guard inet_pton(AF_INET6, text, &storage) == 1 else { return nil }
            self.init(bytes: withUnsafeBytes(of: storage) { Array($0) })
        } else {
            var storage = in_addr()
            guard inet_pton(AF_INET, text, &storage) == 1 else { return nil }
            self.init(bytes: withUnsafeBytes(of: storage) { Array($0) })
        }
    }

    /// The unspecified address of a family (`0.0.0.0` or `::`).
    public static func unspecified(_ family: AddressFamily) -> IPAddress {
        IPAddress(family: family, high: 0, low: 0)
    }

    private init(family: AddressFamily, high: UInt64, low: UInt64) {
        self.family = family
        self.high = high
        self.low = low
    }

    /// A 64-bit mix of the address, for hashing compound keys with one `Hasher.combine`.
    public var mixedBits: UInt64 {
        Bits.mix(high ^ Bits.mix(low &+ (family == .ipv4 ? 4 : 6)))
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(high)
        hasher.combine(low)
    }

    /// The canonical textual form.
    public var description: String {
        if family == .ipv4 { return ipv4Description }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let domain = family == .ipv4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(domain, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard ok else { return "<invalid address>" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Dotted decimal, written straight into the string (a plan formats millions of them).
    private var ipv4Description: String {
        String(unsafeUninitializedCapacity: 15) { writeIPv4(into: $0) }
    }

    /// Appends `description`'s UTF-8 to `bytes`: an IPv4 address's dotted decimal written in
    /// place (the plan's fingerprints write millions), an IPv6 address's text as `inet_ntop`
    /// writes it.
    package func appendDescription(to bytes: inout [UInt8]) {
        guard family == .ipv4 else {
            var text = description
            text.withUTF8 { bytes.append(contentsOf: $0) }
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 15) { buffer in
            bytes.append(contentsOf: buffer.prefix(writeIPv4(into: buffer)))
        }
    }

    /// Writes this IPv4 address's dotted decimal into `buffer` (room for 15 bytes); returns
    /// how many bytes it wrote.
    private func writeIPv4(into buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
        var count = 0
        for index in 0..<4 {
            if index > 0 {
                buffer[count] = UInt8(ascii: ".")
                count += 1
            }
            let octet = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(index)))
            if octet >= 100 {
                buffer[count] = UInt8(ascii: "0") + octet / 100
                count += 1
            }
            if octet >= 10 {
                buffer[count] = UInt8(ascii: "0") + (octet / 10) % 10
                count += 1
            }
            buffer[count] = UInt8(ascii: "0") + octet % 10
            count += 1
        }
        return count
    }

    /// True for `0.0.0.0` and `::`.
    public var isUnspecified: Bool { high == 0 && low == 0 }

    /// True for `224.0.0.0/4` and `ff00::/8`.
    public var isMulticast: Bool {
        family == .ipv4 ? (bytes[0] & 0xF0) == 0xE0 : bytes[0] == 0xFF
    }

    /// True for `127.0.0.0/8` and `::1`.
    public var isLoopback: Bool {
        family == .ipv4 ? bytes[0] == 127 : bytes == [UInt8](repeating: 0, count: 15) + [1]
    }

    /// True for the limited broadcast address `255.255.255.255`.
    public var isLimitedBroadcast: Bool { family == .ipv4 && bytes.allSatisfy { $0 == 0xFF } }

    /// True for an IPv6 address with an IPv4-mapped prefix (`::ffff:0:0/96`).
    public var isIPv4Mapped: Bool {
        family == .ipv6 && bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
    }

    /// True when the address can name one host: not unspecified, multicast, loopback, the limited
    /// broadcast address, or an IPv4-mapped IPv6 address.
    public var isUnicastHost: Bool {
        !isUnspecified && !isMulticast && !isLoopback && !isLimitedBroadcast && !isIPv4Mapped
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        if lhs.family != rhs.family { return lhs.family < rhs.family }
        return (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let address = IPAddress(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an IP address: \(text)")
        }
        self = address
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// A fast 64-bit mixer (the SplitMix64 finalizer), for folding several fields into one value
/// before handing it to `Hasher`.
public enum Bits {
    @inlinable
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
