import DesiredState
import Foundation
import Kernel
import KernelSimulator
import MeshwardCore

@testable import Reconciler

/// One traffic selector of one channel: what a probe packet exercises.
struct TrafficProbe: Hashable, CustomStringConvertible {
    let channel: ChannelID
    let traffic: TrafficMatch

    var description: String { traffic == .any ? "\(channel)" : "\(channel) \(traffic)" }
}

/// The states one pass could reach, as the search counted them.
struct PassSearch: Sendable, Hashable {
    /// The pass number.
    let pass: Int
    /// How many operations each node received, by node name.
    let operationCounts: [String: Int]
    /// The product of (n_i + 1) over the nodes in `operationCounts` (saturating).
    let fleetStates: Int
    /// The per-channel prefix pairs walked, and the number that exist.
    let checkedStates: Int
    let existingStates: Int
}

/// A channel the search probes in one pass: one of the intent, or one being removed.
private struct ProbedChannel {
    let id: ChannelID
    let destination: IPAddress
    let traffic: [TrafficMatch]
    /// Plaintext after enforcement counts (the intent wants the channel required).
    let requiresEnforcement: Bool
    let isRemoved: Bool
    /// Lost state took it down: drops are the outage, plaintext still counts.
    let isDown: Bool
}

extension ContinuityHarness {
    /// The product of (n_i + 1), saturating at `Int.max`.
    static func productOfPrefixes(_ counts: some Sequence<Int>) -> Int {
        var product = 1
        for count in counts {
            let (next, overflow) = product.multipliedReportingOverflow(by: count + 1)
            if overflow { return .max }
            product = next
        }
        return product
    }

    /// Checks continuity in every state the pass can reach (see the type's documentation).
    func checkReachableStates(_ prepared: PreparedPass, intent: FleetIntent) {
        let operations = prepared.plan.operations.mapValues { $0.map(\.operation) }.filter { !$0.value.isEmpty }
        guard !operations.isEmpty else { return }
        let channels = probedChannels(intent, in: fleet.state)
        let existing = channels.reduce(0) {
            $0 + ((operations[$1.id.from]?.count ?? 0) + 1) * ((operations[$1.id.to]?.count ?? 0) + 1)
        }
        let checkedBefore = checkedStates
        let base = fleet.state
        let now = clock.now()
        expireInFlight(now: now)
        for channel in channels {
            walk(channel, base: base, operations: operations, now: now, pass: "pass \(prepared.number)")
        }
        let products = Self.productOfPrefixes(operations.values.map(\.count))
        existingStates += existing
        fleetStates = fleetStates > Int.max - products ? .max : fleetStates + products
        checkedOperations += operations.values.reduce(0) { $0 + $1.count }
        searches.append(
            PassSearch(
                pass: prepared.number, operationCounts: operations.mapValues(\.count), fleetStates: products,
                checkedStates: checkedStates - checkedBefore, existingStates: existing))
    }

    /// Checks the fleet as it is after a pass (the order the executor really took, and any
    /// failure it met) and carries its traffic on: enforcement seen there counts from now on, and
    /// a channel that was down is up again once every selector of it delivers encrypted.
    func noteEnforcement(_ intent: FleetIntent) {
        let state = fleet.state
        let now = clock.now()
        expireInFlight(now: now)
        let counted = checkedStates
        for channel in probedChannels(intent, in: state) {
            let delivers = walk(channel, base: state, operations: [:], now: now, pass: "after pass \(passNumber)")
            if channel.isDown, delivers {
                down.remove(channel.id)
                restoredAfter[channel.id] = passNumber
            }
        }
        checkedStates = counted
    }

    private static func isEncrypted(_ outcome: PacketOutcome) -> Bool {
        if case .deliveredEncrypted = outcome { return true }
        return false
    }

    private func expireInFlight(now: Date) {
        inFlight = inFlight.compactMapValues { packets in
            let left = packets.filter { $0.value.sentAt.addingTimeInterval(latency) > now }
            return left.isEmpty ? nil : left
        }
    }

    private func probedChannels(_ intent: FleetIntent, in state: SimulatedFleetState) -> [ProbedChannel] {
        var channels: [ProbedChannel] = []
        for channel in intent.channels {
            channels.append(
                ProbedChannel(
                    id: channel.id, destination: channel.destination,
                    traffic: channel.traffic.isEmpty ? [.any] : channel.traffic,
                    requiresEnforcement: channel.enforcement == .required, isRemoved: false,
                    isDown: down.contains(channel.id)))
        }
        for (id, removed) in removing.sorted(by: { $0.key < $1.key })
        where !wiped.contains(id.from) && !wiped.contains(id.to) {
            // A re-addressed receiver no longer holds the old address: nothing to deliver to.
            guard state.node(holding: removed.destination) == id.to else { continue }
            channels.append(
                ProbedChannel(
                    id: id, destination: removed.destination,
                    traffic: removed.traffic.isEmpty ? [.any] : removed.traffic,
                    requiresEnforcement: false, isRemoved: true, isDown: false))
        }
        return channels
    }

    /// Walks every pair (k_from, k_to) of prefixes of the two nodes' operations in this pass, in an
    /// order where each pair comes after the two it can be reached from, and probes each selector
    /// in each. Enforcement and packets in flight flow from a pair to the pairs after it.
    @discardableResult
    private func walk(
        _ channel: ProbedChannel, base: SimulatedFleetState, operations: [String: [KernelOperation]], now: Date,
        pass: String
    ) -> Bool {
        var deliversEncrypted = true
        let (from, to) = (channel.id.from, channel.id.to)
        let senderOperations = operations[from] ?? []
        let receiverOperations = operations[to] ?? []
        let columns = receiverOperations.count + 1
        let size = (senderOperations.count + 1) * columns
        for (selector, traffic) in channel.traffic.enumerated() {
            let probe = TrafficProbe(channel: channel.id, traffic: traffic)
            // Per pair: enforcement seen on some way here, and the packets sent in this pass on
            // some way here (by SPI: the receiver's verdict depends on nothing else that changes).
            var enforcedAt = [Bool](repeating: false, count: size)
            var sentAt = [[SPI: PacketInFlight]](repeating: [:], count: size)
            let carried = (inFlight[probe] ?? [:]).mapValues(\.packet)
            var sender = base
            for k in 0...senderOperations.count {
                if k > 0 { _ = sender.apply(senderOperations[k - 1], on: from, reqid: reqid) }
                var state = sender
                for j in 0..<columns {
                    if j > 0 { _ = state.apply(receiverOperations[j - 1], on: to, reqid: reqid) }
                    if selector == 0 { checkedStates += 1 }
                    let index = k * columns + j
                    var enforcedHere = enforced.contains(probe)
                    var sent: [SPI: PacketInFlight] = [:]
                    if k > 0 {
                        enforcedHere = enforcedHere || enforcedAt[index - columns]
                        sent.merge(sentAt[index - columns]) { older, _ in older }
                    }
                    if j > 0 {
                        enforcedHere = enforcedHere || enforcedAt[index - 1]
                        sent.merge(sentAt[index - 1]) { older, _ in older }
                    }
                    let place = "\(pass), \(from) after \(k) and \(to) after \(j) of its operations"
                    if !channel.isDown {
                        checkArrivals(
                            Array(carried.values) + Array(sent.values), in: state, probe: probe, at: place)
                    }
                    var copy = state
                    let departure = copy.transmit(
                        from: from, to: channel.destination, transport: traffic.transport ?? .udp,
                        sourcePort: traffic.sourcePort ?? 40_000, destinationPort: traffic.destinationPort ?? 4_000)
                    let outcome: PacketOutcome
                    switch departure {
                    case .ended(let ended):
                        outcome = ended
                    case .inFlight(let packet):
                        // What a channel sends while it is down belongs to the outage.
                        if latency > 0, !channel.isDown, let spi = packet.spi, sent[spi] == nil { sent[spi] = packet }
                        outcome = copy.deliver(packet)
                    }
                    judge(outcome, of: channel, probe: probe, in: state, enforced: &enforcedHere, at: place)
                    if index == size - 1, !Self.isEncrypted(outcome) { deliversEncrypted = false }
                    enforcedAt[index] = enforcedHere
                    sentAt[index] = sent
                }
            }
            // The last pair comes after every other: what was seen or sent anywhere reaches it.
            if enforcedAt[size - 1] { enforced.insert(probe) }
            var left = inFlight[probe] ?? [:]
            for (spi, packet) in sentAt[size - 1] { left[spi] = (packet, now) }
            inFlight[probe] = left.isEmpty ? nil : left
        }
        return deliversEncrypted
    }

    /// Packets sent in earlier states arrive in `state`: each needs its SA still there.
    private func checkArrivals(
        _ packets: some Sequence<PacketInFlight>, in state: SimulatedFleetState, probe: TrafficProbe, at place: String
    ) {
        for packet in packets {
            var copy = state
            let outcome = copy.deliver(packet)
            switch outcome {
            case .deliveredEncrypted, .deliveredPlaintext, .undeliverable: continue
            // Real traffic between two converges may have moved the window past the probe's number.
            case .dropped(let counter) where counter == XfrmStatistic.inStateSequenceError.rawValue: continue
            case .dropped:
                record(
                    "\(place): \(probe) lost a packet in flight under spi \(packet.spi?.hex ?? "-"): \(outcome)")
            }
        }
    }

    private func judge(
        _ outcome: PacketOutcome, of channel: ProbedChannel, probe: TrafficProbe, in state: SimulatedFleetState,
        enforced: inout Bool, at place: String
    ) {
        if channel.isRemoved {
            if !outcome.isDelivered { record("\(place): removed channel \(probe) \(outcome)") }
            return
        }
        switch outcome {
        case .deliveredEncrypted:
            if channel.requiresEnforcement, !enforced, receiverEnforces(state, probe: probe, source: channel) {
                enforced = true
            }
        case .deliveredPlaintext:
            if channel.requiresEnforcement, enforced {
                record("\(place): \(probe) sent plaintext after enforcement\(channel.isDown ? " (restoring)" : "")")
            }
        case .dropped, .undeliverable:
            if !channel.isDown { record("\(place): \(probe) \(outcome)") }
        }
    }

    /// The receiver's owned inbound policy for exactly this selector is required.
    private func receiverEnforces(
        _ state: SimulatedFleetState, probe: TrafficProbe, source channel: ProbedChannel
    )
        -> Bool
    {
        guard let receiver = state.nodes[probe.channel.to], let sender = state.nodes[probe.channel.from],
            let source = sender.address(of: channel.destination.family)
        else { return false }
        return receiver.policies.contains {
            $0.direction == .inbound && $0.template.reqid == reqid && !$0.template.isOptional
                && $0.selector.source.address == source && $0.selector.destination.address == channel.destination
                && $0.selector.traffic == probe.traffic
        }
    }

    private func record(_ violation: String) {
        guard violations.count < Self.violationLimit, !violations.contains(violation) else { return }
        violations.append(violation)
    }
}
