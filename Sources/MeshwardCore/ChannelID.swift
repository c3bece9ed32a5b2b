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

    /// Parses the `description` spelling, `from->to/family` (`web-1->app-1/ipv4`); nil for
    /// anything else. Node names hold neither `>` nor `/`, so the spelling is unambiguous.
    public init?(_ text: String) {
        guard let slash = text.lastIndex(of: "/"),
            let family = AddressFamily(rawValue: String(text[text.index(after: slash)...]))
        else { return nil }
        let nodes = text[..<slash].split(separator: "->", omittingEmptySubsequences: false)
        guard nodes.count == 2,
            nodes.allSatisfy({ !$0.isEmpty && !$0.contains("/") && !$0.contains(">") })
        else { return nil }
        self.init(from: String(nodes[0]), to: String(nodes[1]), family: family)
    }

    public static func < (lhs: ChannelID, rhs: ChannelID) -> Bool {
        (lhs.from, lhs.to, lhs.family) < (rhs.from, rhs.to, rhs.family)
    }
}
