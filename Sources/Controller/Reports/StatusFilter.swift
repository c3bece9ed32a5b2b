import Reconciler
/// Which channels `meshward status` lists: `--step STEP`, `--drift`, `--channel FROM:TO`. Every
/// given condition must hold; an empty filter lists every channel.
public struct StatusFilter: Sendable, Equatable {
    /// Only channels in this step (`established`, `draining`, ...).
    public var step: String?
    /// Only channels that drifted.
    public var driftOnly: Bool
    /// Only the channels from one node to another (both families).
    public var channel: (from: String, to: String)?

    public init(step: String? = nil, driftOnly: Bool = false, channel: (from: String, to: String)? = nil) {
        self.step = step
        self.driftOnly = driftOnly
        self.channel = channel
    }

    public static func == (lhs: StatusFilter, rhs: StatusFilter) -> Bool {
        lhs.step == rhs.step && lhs.driftOnly == rhs.driftOnly && lhs.channel?.from == rhs.channel?.from
            && lhs.channel?.to == rhs.channel?.to
    }

    /// True when `channel` passes every condition.
    public func includes(_ channel: StatusDocument.Channel) -> Bool {
        if let step, channel.step != step { return false }
        if driftOnly && !channel.drift { return false }
        if let wanted = self.channel, channel.from != wanted.from || channel.to != wanted.to { return false }
        return true
    }
}

extension StatusDocument.Summary {
    /// Counts over every node and channel read.
    public init(nodes: [StatusDocument.Node], channels: [StatusDocument.Channel]) {
        var byStep: [String: Int] = [:]
        for channel in channels { byStep[channel.step, default: 0] += 1 }
        var drops: [String: UInt64] = [:]
        for node in nodes {
            for (counter, value) in node.dropCounters where value > 0 {
                drops[counter, default: 0] &+= value
            }
        }
        self.init(
            nodesReachable: nodes.filter(\.reachable).count, nodesUnreachable: nodes.filter { !$0.reachable }.count,
            channelsByStep: byStep, channelsDrifted: channels.filter(\.drift).count,
            rekeysOverdue: channels.filter(\.rekeyOverdue).count,
            nodesWithDrops: nodes.filter { $0.dropCounters.values.contains { $0 > 0 } }.map(\.name).sorted(),
            dropCounters: drops)
    }
}
