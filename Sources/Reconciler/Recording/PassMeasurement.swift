import DesiredState
import Foundation
import Kernel
import MeshwardCore
import Store

/// What one pass did and saw, reduced to the numbers a metrics backend exports: counts per
/// step, reason, node and operation kind, never per channel or SPI. Computed from the pass's
/// report and the Store's channel records (pure: values in, values out).
public struct PassMeasurement: Sendable, Hashable {
    /// Operations sent to one node, of one kind, with one result.
    public struct OperationTally: Sendable, Hashable {
        public var node: String
        /// `add-sa`, `delete-sa`, `add-policy`, `update-policy`, `delete-policy`.
        public var kind: String
        /// True when the kernel applied them; false when it refused them, or they were not
        /// attempted, or their outcome is unknown.
        public var applied: Bool
        public var count: Int

        public init(node: String, kind: String, applied: Bool, count: Int) {
            self.node = node
            self.kind = kind
            self.applied = applied
            self.count = count
        }
    }

    /// How long the pass took on the reconciler's clock, in seconds (observe to last answer).
    public var durationSeconds: Double
    /// Channels in each step after the pass; every step is present, zero included.
    public var channelsByStep: [ChannelStep: Int]
    /// Generations issued in the pass, by reason; only reasons that occurred.
    public var generationsIssued: [GenerationNeed.Reason: Int]
    /// Operations sent, per node, kind and result, sorted.
    public var operations: [OperationTally]
    /// Nodes that did not answer the pass's observation.
    public var unreachableNodes: Int
    /// Nodes that answered but have a channel that cannot advance because its other end did not.
    public var blockedNodes: Int
    /// Channels whose two kernels both answered and lack or hold differently what the Store
    /// says (before the pass changed anything).
    public var driftedChannels: Int
    /// Every node's XFRM statistics as observed (`/proc/net/xfrm_stat`): node -> counter -> value.
    public var dropCounters: [String: [String: UInt64]]
    /// The age in seconds of every channel's active key after the pass.
    public var activeKeyAges: [Double]
    /// Seconds until the first rekey by age falls due (negative when overdue); nil without an
    /// active generation the spec still names.
    public var secondsUntilNextRekey: Double?
    /// For each node behind an agent that answered, when the certificate its agent presented
    /// expires, in seconds since 1970-01-01 UTC.
    public var agentCertificateExpiries: [String: Double]

    /// The age of the oldest active key, in seconds; nil without one.
    public var oldestKeyAgeSeconds: Double? { activeKeyAges.max() }

    public init(
        durationSeconds: Double, channelsByStep: [ChannelStep: Int], generationsIssued: [GenerationNeed.Reason: Int],
        operations: [OperationTally], unreachableNodes: Int, blockedNodes: Int, driftedChannels: Int,
        dropCounters: [String: [String: UInt64]], activeKeyAges: [Double], secondsUntilNextRekey: Double?,
        agentCertificateExpiries: [String: Double] = [:]
    ) {
        self.durationSeconds = durationSeconds
        self.channelsByStep = channelsByStep
        self.generationsIssued = generationsIssued
        self.operations = operations
        self.unreachableNodes = unreachableNodes
        self.blockedNodes = blockedNodes
        self.driftedChannels = driftedChannels
        self.dropCounters = dropCounters
        self.activeKeyAges = activeKeyAges
        self.secondsUntilNextRekey = secondsUntilNextRekey
        self.agentCertificateExpiries = agentCertificateExpiries
    }

    /// The measurement of `report`.
    ///
    /// - Parameters:
    ///   - before: the channel records as the pass found them (drift is judged against these).
    ///   - after: the records once the pass recorded its changes (steps, keys).
    ///   - intent: the spec the pass ran against (each channel's `rekey.every`).
    ///   - now: when the pass ended, on the reconciler's clock.
    public init(
        report: PassReport, before: [ChannelID: ChannelRecord], after: [ChannelID: ChannelRecord],
        intent: FleetIntent, now: Date
    ) {
        durationSeconds = max(0, now.timeIntervalSince(report.startedAt))

        var steps = Dictionary(uniqueKeysWithValues: ChannelStep.allCases.map { ($0, 0) })
        for record in after.values {
            steps[record.step, default: 0] += 1
        }
        channelsByStep = steps

        var issued: [GenerationNeed.Reason: Int] = [:]
        for generation in report.issued { issued[generation.reason, default: 0] += 1 }
        generationsIssued = issued

        var tallies: [OperationTally: Int] = [:]
        for (planned, outcome) in report.results {
            let key = OperationTally(
                node: planned.node, kind: planned.operation.kind, applied: outcome.isApplied, count: 0)
            tallies[key, default: 0] += 1
        }
        operations = tallies.map { key, count in
            var tally = key
            tally.count = count
            return tally
        }
        .sorted { ($0.node, $0.kind, $0.applied ? 0 : 1) < ($1.node, $1.kind, $1.applied ? 0 : 1) }

        unreachableNodes = report.unreachable.count
        let reachable = Set(report.observations.keys)
        let blocked = report.plan.blocked.flatMap { [$0.channel.from, $0.channel.to] }.filter(reachable.contains)
        blockedNodes = Set(blocked).count

        let observed = ObservedObjects(before.isEmpty ? [:] : report.observations)
        driftedChannels =
            before.values.filter { record in
                reachable.contains(record.id.from) && reachable.contains(record.id.to)
                    && !record.drift(in: observed).isEmpty
            }
            .count

        dropCounters = report.observations.mapValues(\.statistics)
        agentCertificateExpiries = report.observations.compactMapValues {
            $0.agentCertificateExpiry?.timeIntervalSince1970
        }

        let every = Dictionary(
            intent.channels.map { ($0.id, $0.rekey.every.timeInterval) }, uniquingKeysWith: { first, _ in first })
        var ages: [Double] = []
        var untilRekey: Double?
        for record in after.values {
            guard let active = record.active else { continue }
            ages.append(max(0, now.timeIntervalSince(active.createdAt)))
            if let every = every[record.id] {
                let due = active.createdAt.addingTimeInterval(every).timeIntervalSince(now)
                untilRekey = min(untilRekey ?? due, due)
            }
        }
        activeKeyAges = ages.sorted()
        secondsUntilNextRekey = untilRekey
    }
}
