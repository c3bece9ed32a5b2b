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
struct ProbedChannel {
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
        switch search {
        case .perChannel:
            for channel in channels {
                walk(channel, base: base, operations: operations, now: now, pass: "pass \(prepared.number)")
            }
        case .wholeFleet:
            walkWholeFleet(channels, base: base, operations: operations, now: now, pass: "pass \(prepared.number)")
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
                    let outcome = probeState(
                        state, channel: channel, probe: probe, carried: carried, enforced: &enforcedHere, sent: &sent,
                        pass: pass, at: place)
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

    /// Probes one selector of `channel` in `state`: packets sent in the states before it arrive,
    /// and one more is sent. `enforced` and `sent` come in as what flowed from the states before
    /// and leave as this state's.
    private func probeState(
        _ state: SimulatedFleetState, channel: ProbedChannel, probe: TrafficProbe, carried: [SPI: PacketInFlight],
        enforced: inout Bool, sent: inout [SPI: PacketInFlight], pass: String, at place: String
    ) -> PacketOutcome {
        if !channel.isDown {
            checkArrivals(
                Array(carried.values) + Array(sent.values), in: state, probe: probe, pass: pass, at: place)
        }
        var copy = state
        let traffic = probe.traffic
        let departure = copy.transmit(
            from: channel.id.from, to: channel.destination, transport: traffic.transport ?? .udp,
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
        judge(outcome, of: channel, probe: probe, in: state, enforced: &enforced, pass: pass, at: place)
        return outcome
    }

    /// The cross-check of `walk`: builds every state of the product of per-node prefixes of the
    /// pass (each from a state before it, one operation further) and probes every channel in
    /// each, with enforcement and packets in flight flowing from each state to those after it.
    /// Costs the product of (n_i + 1) fleet states, so it is for small fleets only.
    func walkWholeFleet(
        _ channels: [ProbedChannel], base: SimulatedFleetState, operations: [String: [KernelOperation]], now: Date,
        pass: String
    ) {
        let nodes = operations.keys.sorted()
        let counts = nodes.map { operations[$0]?.count ?? 0 }
        // Mixed radix, the last node's digit fastest: index = sum of k_i * stride_i.
        var strides = [Int](repeating: 1, count: nodes.count)
        for i in stride(from: nodes.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * (counts[i + 1] + 1) }
        let total = Self.productOfPrefixes(counts)
        precondition(total <= 1_000_000, "the whole-fleet walk is for small passes (\(total) states)")
        var states: [SimulatedFleetState] = []
        states.reserveCapacity(total)
        let probes = channels.flatMap { channel in
            channel.traffic.map { (channel, TrafficProbe(channel: channel.id, traffic: $0)) }
        }
        var enforcedAt = [[Bool]](repeating: [Bool](repeating: false, count: total), count: probes.count)
        var sentAt = [[[SPI: PacketInFlight]]](
            repeating: [[SPI: PacketInFlight]](repeating: [:], count: total), count: probes.count)
        let carried = probes.map { (inFlight[$0.1] ?? [:]).mapValues(\.packet) }
        for index in 0..<total {
            let digits = nodes.indices.map { (index / strides[$0]) % (counts[$0] + 1) }
            var state = base
            if let last = digits.indices.last(where: { digits[$0] > 0 }) {
                state = states[index - strides[last]]
                _ = state.apply(operations[nodes[last]]![digits[last] - 1], on: nodes[last], reqid: reqid)
            }
            states.append(state)
            checkedFleetStates += 1
            let place = "\(pass), state \(zip(nodes, digits).map { "\($0):\($1)" }.joined(separator: " "))"
            for (number, (channel, probe)) in probes.enumerated() {
                var enforcedHere = enforced.contains(probe)
                var sent: [SPI: PacketInFlight] = [:]
                for i in digits.indices where digits[i] > 0 {
                    enforcedHere = enforcedHere || enforcedAt[number][index - strides[i]]
                    sent.merge(sentAt[number][index - strides[i]]) { older, _ in older }
                }
                _ = probeState(
                    state, channel: channel, probe: probe, carried: carried[number], enforced: &enforcedHere,
                    sent: &sent, pass: pass, at: place)
                enforcedAt[number][index] = enforcedHere
                sentAt[number][index] = sent
            }
        }
        for (number, (_, probe)) in probes.enumerated() {
            if enforcedAt[number][total - 1] { enforced.insert(probe) }
            var left = inFlight[probe] ?? [:]
            for (spi, packet) in sentAt[number][total - 1] { left[spi] = (packet, now) }
            inFlight[probe] = left.isEmpty ? nil : left
        }
    }

    /// Packets sent in earlier states arrive in `state`: each needs its SA still there.
    private func checkArrivals(
        _ packets: some Sequence<PacketInFlight>, in state: SimulatedFleetState, probe: TrafficProbe, pass: String,
        at place: String
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
                    "lost a packet in flight: \(outcome)", detail: " (spi \(packet.spi?.hex ?? "-"))", probe: probe,
                    pass: pass, at: place)
            }
        }
    }

    private func judge(
        _ outcome: PacketOutcome, of channel: ProbedChannel, probe: TrafficProbe, in state: SimulatedFleetState,
        enforced: inout Bool, pass: String, at place: String
    ) {
        if channel.isRemoved {
            if !outcome.isDelivered { record("(removed) \(outcome)", probe: probe, pass: pass, at: place) }
            return
        }
        switch outcome {
        case .deliveredEncrypted:
            if channel.requiresEnforcement, !enforced, receiverEnforces(state, probe: probe, source: channel) {
                enforced = true
            }
        case .deliveredPlaintext:
            if channel.requiresEnforcement, enforced {
                let restoring = channel.isDown ? " (restoring)" : ""
                record("sent plaintext after enforcement\(restoring)", probe: probe, pass: pass, at: place)
            }
        case .dropped, .undeliverable:
            if !channel.isDown { record("\(outcome)", probe: probe, pass: pass, at: place) }
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

    /// Notes a violation: `what` happened to `probe` in a state of `pass`, described by `place`.
    /// `detail` (an SPI: which one a generation gets depends on the order the Store hands them
    /// out) goes into the message only, not into the verdict.
    private func record(_ what: String, detail: String = "", probe: TrafficProbe, pass: String, at place: String) {
        verdicts.insert("\(pass): \(probe) \(what)")
        let violation = "\(place): \(probe) \(what)\(detail)"
        guard violations.count < Self.violationLimit, !violations.contains(violation) else { return }
        violations.append(violation)
    }
}
