/// Names one channel: one direction of protected traffic between two nodes in one family.
///
/// A flow between web-1 and app-1 over IPv4 gives two channels, `web-1->app-1/ipv4` and
/// `app-1->web-1/ipv4`. The identity outlives any one generation of keys.
public struct ChannelID: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The sending node's name.
    public let from: String
    /// The receiving node's name.
    public let to: String
    public let family: AddressFamily

    public init(from: String, to: String, family: AddressFamily) {
        self.from = from
        self.to = to
        self.family = family
    }

    /// The opposite direction between the same nodes.
    public var reversed: ChannelID { ChannelID(from: to, to: from, family: family) }

    /// `from->to/family`, the form the CLI prints and `rekey --channel` accepts (without family).
    public var description: String { "\(from)->\(to)/\(family)" }

    public static func < (lhs: ChannelID, rhs: ChannelID) -> Bool {
        (lhs.from, lhs.to, lhs.family) < (rhs.from, rhs.to, rhs.family)
    }
}
