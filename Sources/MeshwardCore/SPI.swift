/// A security parameter index: with the destination address and ESP, it names one SA.
public struct SPI: RawRepresentable, Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The SPI in host byte order.
    public let rawValue: UInt32

    /// The smallest SPI Meshward issues; 0 through 255 are reserved by RFC 4303.
    public static let minimumIssued: UInt32 = 0x100

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public init(_ value: UInt32) { self.rawValue = value }

    /// `0x` followed by eight lowercase hex digits, as `ip xfrm` prints SPIs.
    public var hex: String { HexDigits.prefixed(rawValue, width: 8) }

    public var description: String { hex }

    public static func < (lhs: SPI, rhs: SPI) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The request id that marks an SA or policy as Meshward's own.
public struct Reqid: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ value: UInt32) { self.rawValue = value }

    /// Meshward's default reqid, 0x4d57 ("MW").
    public static let meshwardDefault = Reqid(0x4d57)

    public var description: String { SPI(rawValue).hex }
}
