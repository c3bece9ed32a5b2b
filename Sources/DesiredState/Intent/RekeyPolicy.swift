/// When a channel's key is replaced by a fresh generation.
public struct RekeyPolicy: Sendable, Hashable, CustomStringConvertible {
    /// The longest a generation stays active; always positive.
    public let every: Duration
    /// The number of packets after which a generation is replaced, if any; always positive.
    public let packets: UInt64?

    /// Creates a policy. `every` must be positive and `packets`, when given, greater than zero.
    public init(every: Duration, packets: UInt64? = nil) {
        self.every = every
        self.packets = packets
    }

    /// The default: every 24 hours, no packet limit.
    public static let `default` = RekeyPolicy(every: .seconds(24 * 3600))

    /// `every 24h` or `every 24h or 1000000000 packets`.
    public var description: String {
        let age = "every \(SpecDuration.format(every))"
        guard let packets else { return age }
        return "\(age) or \(packets) packets"
    }
}
