import DesiredState
import Foundation
import Kernel
import MeshwardCore

extension PassPlanning {
    // MARK: - Generations

    /// Moves generations along from what the kernels show: a pinned pending generation becomes
    /// active (the switch); a tampered one, or one whose addresses or cipher the spec no longer
    /// names, is superseded; a used one (its switch was sent) that lost an SA is burned; one gone
    /// from both nodes is retired. A superseded generation's drain starts when its sender is
    /// seen to no longer pin it, and while it drains the receiver's packet counter is recorded.
    /// Asks for a new generation where the channel needs one. Returns whether the record changed.
    mutating func advanceGenerations(
        _ record: inout ChannelRecord, intent: ChannelIntent?, from: Int, to: Int
    ) -> Bool {
        let id = record.id
        let senderObserved = index.isObserved(from)
        let receiverObserved = index.isObserved(to)
        var burned: GenerationNeed.Reason?
        var changed = false
        var activeHeld: (sender: SecurityAssociation?, receiver: SecurityAssociation?) = (nil, nil)
        let drain = (intent?.drain ?? input.intent.channel(id)?.drain ?? input.defaultDrain).timeInterval

        /// Marks a generation superseded; its drain starts once the sender no longer pins it.
        func supersede(_ position: Int) {
            record.generations[position].state = .retiring
            changed = true
        }

        let hasPending = record.generations.contains { $0.state == .pending }
        for position in record.generations.indices {
            let generation = record.generations[position]
            let saID = SAIdentifier(destination: generation.destination, spi: generation.spi)
            switch generation.state {
            case .pending, .active:
                // A tampered SA (same SPI, other key, cipher, addresses or replay settings) burns it.
                let onSender = index.sa(saID, on: from)
                let onReceiver = index.sa(saID, on: to)
                let expected = Self.securityAssociation(generation, reqid: input.reqid)
                let tampered =
                    onSender.map { !$0.hasSameConfiguration(as: expected) } ?? false
                    || onReceiver.map { !$0.hasSameConfiguration(as: expected) } ?? false
                if generation.state == .active { activeHeld = (onSender, onReceiver) }
                guard let intent else {
                    supersede(position)
                    continue
                }
                if tampered {
                    supersede(position)
                    burned = .keyMismatch
                    continue
                }
                if generation.state == .pending {
                    // A pending generation the spec no longer describes (the receiver was
                    // re-addressed, the cipher changed) is superseded by a new one.
                    if generation.source != intent.source || generation.destination != intent.destination {
                        supersede(position)
                        burned = burned ?? .readdressed
                        continue
                    }
                    if generation.cipher != intent.cipher {
                        supersede(position)
                        burned = burned ?? .cipherChanged
                        continue
                    }
                    // A generation whose switch was sent may have carried traffic: a node that
                    // lost one of its SAs never gets that key again (lost state).
                    if !rules.contains(.installOnlyUnusedPending), generation.switchSentAt != nil, senderObserved,
                        receiverObserved,
                        onSender == nil || onReceiver == nil
                    {
                        supersede(position)
                        burned = .lostState
                        continue
                    }
                }
                // An active generation a newer one is replacing, that its sender no longer pins
                // although no switch was seen (the policy of an old selector went, or the sender
                // lost its state): its drain runs from this observation.
                if generation.state == .active, hasPending, generation.supersededAt == nil, senderObserved,
                    !index.pins(saID, on: from)
                {
                    record.generations[position].supersededAt = input.now
                    noteDrainCounter(&record.generations[position], on: to)
                    changed = true
                }
                if generation.state == .pending, senderObserved, index.pins(saID, on: from) {
                    for other in record.generations.indices where record.generations[other].state == .active {
                        record.generations[other].state = .retiring
                        if record.generations[other].supersededAt == nil {
                            record.generations[other].supersededAt = input.now
                            noteDrainCounter(&record.generations[other], on: to)
                        }
                    }
                    record.generations[position].state = .active
                    record.generations[position].activatedAt = input.now
                    activeHeld = (onSender, onReceiver)
                    changed = true
                }
            case .retiring:
                let senderDone: Bool
                let senderStopped: Bool
                switch index.peer(owning: generation.source) {
                case .observed(let node):
                    senderStopped = !index.pins(saID, on: node)
                    senderDone = senderStopped && index.sa(saID, on: node) == nil
                case .gone:
                    senderStopped = true
                    senderDone = true
                case .unreachable:
                    senderStopped = false
                    senderDone = false
                }
                let receiverDone: Bool
                switch index.peer(owning: generation.destination) {
                case .observed(let node): receiverDone = index.sa(saID, on: node) == nil
                case .gone: receiverDone = true
                case .unreachable: receiverDone = false
                }
                if senderDone && receiverDone {
                    record.generations[position].state = .retired
                    record.generations[position].retiredAt = input.now
                    changed = true
                    continue
                }
                // The drain runs from the pass that first sees the sender no longer pin it.
                if generation.supersededAt == nil, senderStopped {
                    record.generations[position].supersededAt = input.now
                    noteDrainCounter(&record.generations[position], on: to)
                    changed = true
                } else if let superseded = generation.supersededAt,
                    input.now >= superseded.addingTimeInterval(drain),
                    noteDrainCounter(&record.generations[position], on: to)
                {
                    changed = true
                }
            case .retired:
                break
            }
        }

        guard let intent else { return changed }
        if !senderObserved || !receiverObserved {
            let missing = [id.from, id.to].filter { input.observations[$0] == nil }
            plan.blocked.append(BlockedChannel(channel: id, reasons: missing.map { input.blockReason(needing: $0) }))
            return changed
        }
        guard !record.generations.contains(where: { $0.state == .pending }) else { return changed }
        if let reason = burned ?? rekeyReason(record, intent: intent, held: activeHeld) {
            // Neither a foreign SPI nor one of our own stale SAs at the destination may be reused.
            let avoiding = spisInUse.at(intent.destination, on: to, input: input, index: index)
            plan.generationRequests.append(
                GenerationNeed(
                    request: GenerationRequest(
                        channel: id, cipher: intent.cipher, source: intent.source, destination: intent.destination,
                        avoiding: avoiding),
                    reason: reason))
        }
        return changed
    }

    /// Records on a draining generation the receiver's inbound SA packet counter when it moved
    /// or was never recorded. Returns whether the generation changed.
    @discardableResult
    func noteDrainCounter(_ generation: inout Generation, on receiver: Int) -> Bool {
        guard index.isObserved(receiver),
            let sa = index.sa(SAIdentifier(destination: generation.destination, spi: generation.spi), on: receiver),
            generation.drainPackets != sa.counters.packets || generation.drainPacketsAt == nil
        else { return false }
        generation.drainPackets = sa.counters.packets
        generation.drainPacketsAt = input.now
        return true
    }

    /// Why the channel needs a new generation now, or nil when its active one is good.
    func rekeyReason(
        _ record: ChannelRecord, intent: ChannelIntent,
        held: (sender: SecurityAssociation?, receiver: SecurityAssociation?)
    ) -> GenerationNeed.Reason? {
        guard let active = record.generations.last(where: { $0.state == .active }) else { return .new }
        if active.source != intent.source || active.destination != intent.destination { return .readdressed }
        if active.cipher != intent.cipher { return .cipherChanged }
        guard let outbound = held.sender, held.receiver != nil else { return .lostState }
        if active.createdAt.addingTimeInterval(intent.rekey.every.timeInterval) <= input.now { return .age }
        if let limit = intent.rekey.packets, outbound.counters.packets >= limit { return .packets }
        if let requested = input.rekeyRequests[record.id], requested > active.createdAt { return .requested }
        return nil
    }

}
