import DesiredState
import Foundation
import Kernel
import MeshwardCore
import Reconciler
import Store

/// One channel's line of a plan: what happens to it and, where something visible changes, the
/// old and new values (`cipher aes-gcm-128 → aes-gcm-256`, `traffic tcp dport 8080 → …`).
public struct PlanChannelChange: Codable, Sendable, Equatable {
    /// One changed property of a channel.
    public struct Difference: Codable, Sendable, Equatable {
        /// `cipher`, `traffic`, `addresses`, `enforcement`.
        public var property: String
        public var from: String
        public var to: String
    }

    /// `from->to/family`.
    public var channel: String
    /// `create`, `rekey`, `update` or `remove`.
    public var action: String
    /// For `rekey`, the generation's reason (`age`, `requested`, `cipher-changed` …); for
    /// `update`, what changes without a new generation (`traffic`, `enforcement`); for
    /// `remove`, `not in the spec`. Absent for `create`.
    public var reason: String?
    public var differences: [Difference]
    /// The channel's sending and receiving node (absent from plans saved before they were kept).
    public var from: String?
    public var to: String?
    /// The spec's flows that produce the channel, sorted; absent for a channel the spec no
    /// longer names.
    public var flows: [String]?

    /// Equal when the same channel changes the same way: `from`, `to` and `flows` follow from the
    /// channel and the spec's revision, so a plan saved before they were kept still matches.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.channel == rhs.channel && lhs.action == rhs.action && lhs.reason == rhs.reason
            && lhs.differences == rhs.differences
    }

    /// The `+`, `~` or `-` a plan line starts with.
    public var symbol: String {
        switch action {
        case "create": "+"
        case "remove": "-"
        default: "~"
        }
    }

    /// Every channel the plan touches, sorted by channel.
    static func changes(
        intent: FleetIntent, records: [ChannelID: ChannelRecord], observations: [String: NodeObservation],
        issued: [(channel: ChannelID, spi: SPI, reason: GenerationNeed.Reason)], updated: Set<ChannelID>,
        removed: Set<ChannelID>
    ) -> [PlanChannelChange] {
        // A binary search of the sorted channels per changed channel, not a dictionary of every
        // channel: a plan that changes nothing in a million channels builds nothing.
        func desired(_ id: ChannelID) -> ChannelIntent? { intent.channel(id) }
        // Sized at once: from empty, a million channels change.
        var changes = [ChannelID: PlanChannelChange](minimumCapacity: issued.count + updated.count + removed.count)
        for (channel, _, reason) in issued where changes[channel] == nil {
            if reason == .new {
                changes[channel] = PlanChannelChange(
                    channel: channel.description, action: "create", reason: nil, differences: [])
                continue
            }
            var differences: [Difference] = []
            let active = records[channel]?.generations.last { $0.state == .active }
            if let active, let want = desired(channel) {
                if active.cipher != want.cipher {
                    differences.append(
                        .init(property: "cipher", from: active.cipher.rawValue, to: want.cipher.rawValue))
                }
                if active.source != want.source || active.destination != want.destination {
                    differences.append(
                        .init(
                            property: "addresses", from: "\(active.source) -> \(active.destination)",
                            to: "\(want.source) -> \(want.destination)"))
                }
            }
            changes[channel] = PlanChannelChange(
                channel: channel.description, action: "rekey", reason: reason.rawValue, differences: differences)
        }
        // Policies by (node, direction, source, destination), built once: a lookup per updated
        // channel, so that a change to every channel of a large fleet stays linear.
        struct PolicyKey: Hashable {
            var node: String
            var direction: PolicyDirection
            var source: IPAddress
            var destination: IPAddress
        }
        var policies: [PolicyKey: [SecurityPolicy]] = [:]
        if !updated.isEmpty {
            let nodes = Set(updated.flatMap { [$0.from, $0.to] })
            for node in nodes {
                for policy in observations[node]?.policies ?? [] {
                    let key = PolicyKey(
                        node: node, direction: policy.direction, source: policy.selector.source.address,
                        destination: policy.selector.destination.address)
                    policies[key, default: []].append(policy)
                }
            }
        }
        for channel in updated where changes[channel] == nil {
            var differences: [Difference] = []
            if let want = desired(channel) {
                let outbound =
                    policies[
                        PolicyKey(
                            node: channel.from, direction: .outbound, source: want.source, destination: want.destination
                        )
                    ] ?? []
                let inbound =
                    policies[
                        PolicyKey(
                            node: channel.to, direction: .inbound, source: want.source, destination: want.destination)
                    ] ?? []
                let had = Set(outbound.map(\.selector.traffic)).union(inbound.map(\.selector.traffic))
                let wanted = Set(want.traffic)
                if had != wanted {
                    differences.append(
                        .init(property: "traffic", from: Self.describe(had), to: Self.describe(wanted)))
                }
                let optional = Set(inbound.map(\.template.isOptional))
                let wantOptional = want.enforcement == .permissive
                if !optional.isEmpty, optional != [wantOptional] {
                    differences.append(
                        .init(
                            property: "enforcement", from: optional.contains(true) ? "permissive" : "required",
                            to: wantOptional ? "permissive" : "required"))
                }
            }
            changes[channel] = PlanChannelChange(
                channel: channel.description, action: "update",
                reason: differences.isEmpty ? nil : differences.map(\.property).joined(separator: ", "),
                differences: differences)
        }
        for channel in removed where changes[channel] == nil {
            changes[channel] = PlanChannelChange(
                channel: channel.description, action: "remove", reason: "not in the spec", differences: [])
        }
        return Self.inChannelOrder(consume changes, intent: intent)
    }

    /// `changes` sorted by channel, each with its nodes and the spec's flows. When many of the
    /// spec's channels change (`walking`: from empty, every one), the spec's channels, sorted
    /// already, are walked with one lookup each, and only the channels the spec no longer names
    /// are sorted: a million changes sorted by comparing their names took two seconds. Either
    /// way gives the same list; `walking` chooses the way (nil: by the share that changes).
    static func inChannelOrder(
        _ changes: consuming [ChannelID: PlanChannelChange], intent: FleetIntent, walking: Bool? = nil
    ) -> [PlanChannelChange] {
        func finished(_ channel: ChannelID, _ change: PlanChannelChange, flows: [String]?) -> PlanChannelChange {
            var change = change
            change.from = channel.from
            change.to = channel.to
            change.flows = flows
            return change
        }
        guard walking ?? (changes.count >= intent.channels.count / 8) else {
            return changes.sorted { $0.key < $1.key }.map {
                finished($0.key, $0.value, flows: intent.channel($0.key)?.flows)
            }
        }
        // Taken out of `changes` (consumed: not a copy of it), so that what is left is unnamed.
        let count = changes.count
        var named: [PlanChannelChange] = []
        named.reserveCapacity(count)
        var namedIDs: [ChannelID] = []
        namedIDs.reserveCapacity(count)
        for channel in intent.channels {
            guard let change = changes.removeValue(forKey: channel.id) else { continue }
            named.append(finished(channel.id, change, flows: channel.flows))
            namedIDs.append(channel.id)
        }
        guard !changes.isEmpty else { return named }
        // Merged with the sorted rest.
        let rest = changes.sorted { $0.key < $1.key }
        var merged: [PlanChannelChange] = []
        merged.reserveCapacity(count)
        var next = 0
        for (id, change) in rest {
            while next < named.count, namedIDs[next] < id {
                merged.append(named[next])
                next += 1
            }
            merged.append(finished(id, change, flows: nil))
        }
        merged.append(contentsOf: named[next...])
        return merged
    }

    private static func describe(_ traffic: Set<TrafficMatch>) -> String {
        traffic.isEmpty ? "none" : traffic.sorted().map(\.description).joined(separator: ", ")
    }
}
