import MeshwardCore

/// One direction of protected traffic between two nodes in one address family, as the spec wants it.
public struct ChannelIntent: Sendable, Hashable, CustomStringConvertible {
    /// The sending node, the receiving node and the family.
    public let id: ChannelID
    /// The sender's address in the channel's family.
    public let source: IPAddress
    /// The receiver's address in the channel's family.
    public let destination: IPAddress
    /// The traffic the channel carries: sorted, without repeats or matches covered by another;
    /// `[.any]` when some flow producing the channel names no ports.
    public let traffic: [TrafficMatch]
    /// The cipher of every generation of the channel.
    public let cipher: Cipher
    /// When the channel's key is replaced.
    public let rekey: RekeyPolicy
    /// How long an old inbound SA stays after the sender switched to a new generation.
    public let drain: Duration
    /// Whether the receiver requires ESP once the channel is up.
    public let enforcement: Enforcement
    /// The names of the flows that produced the channel, sorted.
    public let flows: [String]

    /// Creates a channel intent; the values are taken as given.
    public init(
        id: ChannelID, source: IPAddress, destination: IPAddress, traffic: [TrafficMatch], cipher: Cipher,
        rekey: RekeyPolicy, drain: Duration, enforcement: Enforcement, flows: [String]
    ) {
        self.id = id
        self.source = source
        self.destination = destination
        self.traffic = traffic
        self.cipher = cipher
        self.rekey = rekey
        self.drain = drain
        self.enforcement = enforcement
        self.flows = flows
    }

    /// `web-1->app-1/ipv4 198.18.1.10 -> 198.18.2.10 [tcp dport 8080] aes-gcm-256`.
    public var description: String {
        "\(id) \(source) -> \(destination) [\(traffic.map(\.description).joined(separator: ", "))] \(cipher)"
    }
}
