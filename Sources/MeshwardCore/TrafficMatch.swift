/// The transport protocols a flow may name.
public enum TransportProtocol: String, Sendable, Hashable, Codable, CaseIterable, Comparable, CustomStringConvertible {
    case tcp
    case udp
    case sctp
    case icmp
    case icmpv6

    /// The IP protocol number.
    public var number: UInt8 {
        switch self {
        case .tcp: 6
        case .udp: 17
        case .sctp: 132
        case .icmp: 1
        case .icmpv6: 58
        }
    }

    /// True when the protocol has ports (tcp, udp, sctp).
    public var hasPorts: Bool { self == .tcp || self == .udp || self == .sctp }

    public var description: String { rawValue }

    public static func < (lhs: TransportProtocol, rhs: TransportProtocol) -> Bool { lhs.number < rhs.number }
}

/// Which packets of one direction a channel carries, beyond its two host addresses.
///
/// `any` (protocol nil) carries all traffic between the hosts. A flow `web -> app` on `tcp/8080`
/// gives the channel web->app the match (tcp, destination 8080) and the return channel app->web
/// the match (tcp, source 8080).
public struct TrafficMatch: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The protocol; nil for every protocol (and then both ports are nil).
    public let transport: TransportProtocol?
    /// The source port, or nil for any.
    public let sourcePort: UInt16?
    /// The destination port, or nil for any.
    public let destinationPort: UInt16?

    public init(transport: TransportProtocol?, sourcePort: UInt16? = nil, destinationPort: UInt16? = nil) {
        self.transport = transport
        self.sourcePort = transport == nil ? nil : sourcePort
        self.destinationPort = transport == nil ? nil : destinationPort
    }

    /// All traffic between the two hosts.
    public static let any = TrafficMatch(transport: nil)

    /// The match of the opposite direction: the ports swap sides.
    public var reversed: TrafficMatch {
        TrafficMatch(transport: transport, sourcePort: destinationPort, destinationPort: sourcePort)
    }

    /// True when a packet of `transport` from `sourcePort` to `destinationPort` falls inside.
    public func matches(
        transport packetTransport: TransportProtocol, sourcePort packetSource: UInt16?,
        destinationPort packetDestination: UInt16?
    ) -> Bool {
        guard let transport else { return true }
        guard transport == packetTransport else { return false }
        if let sourcePort, sourcePort != packetSource { return false }
        if let destinationPort, destinationPort != packetDestination { return false }
        return true
    }

    /// True when every packet this match carries is also carried by `other`.
    public func isCovered(by other: TrafficMatch) -> Bool {
        guard let otherTransport = other.transport else { return true }
        guard transport == otherTransport else { return false }
        if let port = other.sourcePort, port != sourcePort { return false }
        if let port = other.destinationPort, port != destinationPort { return false }
        return true
    }

    /// A 64-bit value that differs for every distinct match, for hashing compound keys.
    public var mixedBits: UInt64 {
        UInt64(transport?.number ?? 0) << 48 | UInt64(sourcePort.map { UInt32($0) + 1 } ?? 0) << 24
            | UInt64(destinationPort.map { UInt32($0) + 1 } ?? 0)
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(mixedBits) }

    public var description: String {
        guard let transport else { return "any" }
        var text = transport.rawValue
        if let sourcePort { text += " sport \(sourcePort)" }
        if let destinationPort { text += " dport \(destinationPort)" }
        return text
    }

    public static func < (lhs: TrafficMatch, rhs: TrafficMatch) -> Bool {
        func key(_ match: TrafficMatch) -> (Int, Int, Int) {
            (Int(match.transport?.number ?? 0), Int(match.sourcePort ?? 0), Int(match.destinationPort ?? 0))
        }
        return key(lhs) < key(rhs)
    }
}
