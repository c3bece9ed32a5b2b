import DesiredState
import Foundation
import Kernel
import MeshwardCore

extension PassPlanning {
    // MARK: - Staging

    /// Asks the gate whether an operation of the diff may go now, in another form, or not yet;
    /// files what goes in the node's work in its diff category and what is held in the plan.
    /// Returns the operation staged, if any.
    @discardableResult
    mutating func stage(
        _ operation: KernelOperation, on node: Int, generation: Generation? = nil, channel known: ChannelID? = nil
    ) -> KernelOperation? {
        let staged: KernelOperation
        switch gate(operation, on: node, generation: generation) {
        case .send(let decided):
            staged = decided
        case .sendCuttingDrainShort(let decided):
            if case .deleteSA(let id) = decided { plan.drainsCutShort.append(id) }
            staged = decided
        case .startDrain(let deadline):
            if case .deleteSA(let id) = operation { plan.freedUnaccountedSAs.append(id) }
            plan.wait(until: deadline)
            return nil
        case .skip:
            return nil
        case .waitUntil(let deadline):
            plan.wait(until: deadline)
            return nil
        case .hold(let reason):
            // Most holds are the next step waiting for this one: count them all, keep a few.
            if plan.held.count < PassPlan.heldSampleLimit {
                plan.hold(
                    HeldOperation(
                        node: index.names[node], operation: operation,
                        channel: known ?? channel(of: operation), reason: reason))
            } else {
                plan.heldCount += 1
            }
            return nil
        case .blockedBy(let reason):
            if let channel = known ?? channel(of: operation) {
                if plan.blocked.last?.channel != channel {
                    plan.blocked.append(BlockedChannel(channel: channel, reasons: [reason]))
                }
            } else {
                plan.hold(
                    HeldOperation(node: index.names[node], operation: operation, channel: nil, reason: .blocked(reason))
                )
            }
            return nil
        }
        let channel = known ?? channel(of: staged)
        context.operations += 1
        if context.stalePass, let channel { context.staleChannels.insert(channel) }
        let planned = PlannedOperation(node: index.names[node], operation: staged, channel: channel)
        switch operation {
        case .addSA: work[node].operations.addSAs.append(planned)
        case .addPolicy, .updatePolicy: work[node].operations.writePolicies.append(planned)
        case .deletePolicy: work[node].operations.deletePolicies.append(planned)
        case .deleteSA: work[node].operations.deleteSAs.append(planned)
        }
        return staged
    }

    /// The staging rules, one operation at a time, against this pass's observation. Pure: the
    /// caller files what it decides.
    func gate(_ operation: KernelOperation, on node: Int, generation known: Generation?) -> GateDecision {
        func unreachable(_ peer: Int) -> GateDecision {
            .blockedBy(input.blockReason(needing: index.names[peer]))
        }
        switch operation {
        case .addSA(let sa):
            // Only a pending generation whose key was never used is installed; an active one
            // that went missing, or one whose switch was sent, is burned (a new generation).
            guard let generation = known ?? index.generation(of: sa.identifier) else {
                return .hold(.noGeneration)
            }
            if !rules.contains(.installOnlyUnusedPending) {
                guard generation.state == .pending else {
                    return .hold(.generationNotPending(generation.state))
                }
                guard generation.switchSentAt == nil else { return .hold(.keyBurned) }
            }
            guard let receiver = index.number(generation.channel.to) else { return .hold(.receiverUnknown) }
            if node == receiver || rules.contains(.receiverFirst) { return .send(operation) }
            guard index.isObserved(receiver) else { return unreachable(receiver) }
            return index.sa(sa.identifier, on: receiver)?.hasSameConfiguration(as: sa) == true
                ? .send(operation) : .hold(.receiverLacksInboundSA)

        case .addPolicy(let policy), .updatePolicy(let policy):
            if policy.direction == .outbound {
                guard let spi = policy.template.spi else { return .hold(.templatePinsNoSPI) }
                if rules.contains(.receiverFirst) { return .send(operation) }
                let saID = SAIdentifier(destination: policy.selector.destination.address, spi: spi)
                guard index.sa(saID, on: node) != nil else { return .hold(.senderLacksSA) }
                switch index.peer(owning: saID.destination) {
                case .gone: return .hold(.destinationUnowned)
                case .unreachable(let receiver): return unreachable(receiver)
                case .observed(let receiver):
                    guard index.sa(saID, on: receiver) != nil,
                        index.policy(PolicyIdentifier(selector: policy.selector, direction: .inbound), on: receiver)
                            != nil
                    else { return .hold(.receiverLacksInboundSAAndPolicy) }
                    return .send(operation)
                }
            }
            guard !policy.template.isOptional, !rules.contains(.enforceAfterSender) else {
                return .send(operation)
            }
            if case .observed(let sender) = index.peer(owning: policy.selector.source.address),
                index.encrypts(policy.selector, sender: sender, receiver: node)
            {
                return .send(operation)
            }
            var relaxed = policy
            relaxed.template.isOptional = true
            if let existing = index.policy(policy.identifier, on: node) {
                return existing.hasSameConfiguration(as: relaxed)
                    ? .hold(.senderNotEncrypting)
                    : .send(.updatePolicy(relaxed))
            }
            return .send(.addPolicy(relaxed))

        case .deletePolicy(let id):
            guard let existing = index.policy(id, on: node) else { return .skip }
            switch id.direction {
            case .inbound:
                if !existing.template.isOptional, !rules.contains(.removalReceiverLast) {
                    var relaxed = existing
                    relaxed.template.isOptional = true
                    return .send(.updatePolicy(relaxed))
                }
                if rules.contains(.removalReceiverLast) { return .send(operation) }
                switch index.peer(owning: id.selector.source.address) {
                case .gone: return .send(operation)
                case .unreachable(let sender): return unreachable(sender)
                case .observed(let sender):
                    let outbound = PolicyIdentifier(selector: id.selector, direction: .outbound)
                    return index.policy(outbound, on: sender) == nil
                        ? .send(operation) : .hold(.senderKeepsOutboundPolicy)
                }
            case .outbound:
                if rules.contains(.removalReceiverLast) { return .send(operation) }
                switch index.peer(owning: id.selector.destination.address) {
                case .gone: return .send(operation)
                case .unreachable(let receiver): return unreachable(receiver)
                case .observed(let receiver):
                    let inbound = index.policy(
                        PolicyIdentifier(selector: id.selector, direction: .inbound), on: receiver)
                    return inbound == nil || inbound?.template.isOptional == true
                        ? .send(operation) : .hold(.receiverRequiresESP)
                }
            case .forward:
                return .send(operation)
            }

        case .deleteSA(let id):
            guard let existing = index.sa(id, on: node) else { return .skip }
            if index.owner(of: id.destination) != node {
                if rules.contains(.unpinnedBeforeDelete) { return .send(operation) }
                return index.pins(id, on: node) ? .hold(.senderPolicyPins) : .send(operation)
            }
            var senderIsGone = false
            switch index.peer(owning: existing.source) {
            case .unreachable(let sender): return unreachable(sender)
            case .observed(let sender):
                if !rules.contains(.senderStopsFirst),
                    index.pins(id, on: sender) || index.sa(id, on: sender) != nil
                {
                    return .hold(.senderPinsOrHolds)
                }
            case .gone: senderIsGone = true
            }
            if let generation = index.generation(of: id) {
                return drainGate(operation, held: existing, generation: generation, senderIsGone: senderIsGone)
            }
            // An SA no generation accounts for (the Store was lost): its drain runs from the
            // first pass that saw its sender stop using it, as recorded in the Store.
            if senderIsGone || rules.contains(.drainWait) { return .send(operation) }
            guard let freed = input.unaccountedSAsFreedAt[id] else {
                return .startDrain(until: input.now.addingTimeInterval(input.defaultDrain.timeInterval))
            }
            let deadline = freed.addingTimeInterval(input.defaultDrain.timeInterval)
            return input.now < deadline ? .waitUntil(deadline) : .send(operation)
        }
    }

    /// The drain of an inbound SA of a known generation: it goes once `drain` has passed since
    /// the sender was seen to switch away and its packet counter stopped moving between two
    /// observations at least `recheck` apart; after `drainBound` times `drain` it goes anyway.
    func drainGate(
        _ operation: KernelOperation, held: SecurityAssociation, generation: Generation, senderIsGone: Bool
    ) -> GateDecision {
        if rules.contains(.drainWait) { return .send(operation) }
        let drain = (input.intent.channel(generation.channel)?.drain ?? input.defaultDrain).timeInterval
        guard let superseded = generation.supersededAt else {
            // The sender neither pins nor holds the SA, and no earlier pass saw it pin the SA
            // without holding it: it lost the SA at once (re-imaged, flushed) rather than
            // switching away, so nothing it sent under it can still be on the way.
            return .send(operation)
        }
        let deadline = superseded.addingTimeInterval(drain)
        if input.now < deadline { return .waitUntil(deadline) }
        if rules.contains(.counterStopped) { return .send(operation) }
        let bound = superseded.addingTimeInterval(drain * FleetPlanner.drainBound)
        if input.now >= bound {
            return generation.drainPackets == held.counters.packets
                ? .send(operation) : .sendCuttingDrainShort(operation)
        }
        let recheck = min(drain, 1)
        if generation.drainPackets == held.counters.packets, let seen = generation.drainPacketsAt {
            let settled = seen.addingTimeInterval(recheck)
            return input.now >= settled ? .send(operation) : .waitUntil(min(settled, bound))
        }
        return .waitUntil(min(input.now.addingTimeInterval(recheck), bound))
    }

}
