import DesiredState
import Foundation
import Kernel
import MeshwardCore
import Store

/// Plans one pass: from the intent, the Store's generations and one observation of every
/// reachable node, the operations each node gets now, the generation changes to record, and
/// the generations to issue.
///
/// Pure: values in, values out. The staging rules of the design are enforced here as gates on
/// each operation of the minimal diff, evaluated against this pass's observation, so a step
/// starts only once the step before it is seen in the kernels:
/// - an inbound SA of a new generation goes in at once; the outbound SA only once the
///   receiver holds the inbound one; a policy pins an SPI only once both SAs are there;
/// - an inbound policy becomes required only once the sender encrypts that traffic; on the way
///   out it becomes optional first, and goes only after the sender's policy is gone;
/// - an SA is deleted only when no policy pins it; an inbound SA only when its sender neither
///   pins nor holds it, and its drain has passed;
/// - an SA of a generation that was ever active is never installed again: a missing one makes
///   a new generation (lost state), and so does a changed cipher, address or key.
public struct FleetPlanner: Sendable {
    /// A staging rule, named so that a test can switch one off and show that the continuity
    /// check catches the broken order. Production code never switches any off.
    enum Rule: Hashable, Sendable {
        /// The sender installs and pins a new SA only once the receiver holds it.
        case receiverFirst
        /// An inbound policy becomes required only once the sender encrypts.
        case enforceAfterSender
        /// An old inbound SA goes only once its sender stopped using it.
        case senderStopsFirst
    }

    /// Rules switched off (tests only).
    let disabledRules: Set<Rule>

    public init() { disabledRules = [] }

    init(disabling rules: Set<Rule>) { disabledRules = rules }

    public func plan(_ input: PlanningInput) -> PassPlan {
        var plan = PassPlan()
        let index = FleetIndex(input: input)
        var desired: [String: (sas: [SecurityAssociation], policies: [SecurityPolicy])] = [:]
        var records: [ChannelID: ChannelRecord] = [:]

        let channelIDs = Set(input.channels.keys).union(input.intent.channels.map(\.id)).sorted()
        for id in channelIDs {
            var record = input.channels[id]
                ?? ChannelRecord(id: id, step: ChannelStep.new.rawValue, stepChangedAt: input.now, generations: [])
            let original = record
            let intent = input.intent.channel(id)
            advanceGenerations(&record, intent: intent, index: index, input: input, plan: &plan)

            let live = record.generations.filter { $0.state == .pending || $0.state == .active }
            if let intent, let final = live.first(where: { $0.state == .pending }) ?? live.first {
                let inbound = securityAssociation(final, input: input)
                desired[id.to, default: ([], [])].sas.append(inbound)
                desired[id.from, default: ([], [])].sas.append(inbound)
                for traffic in intent.traffic {
                    let selector = PolicySelector(
                        source: IPPrefix(host: intent.source), destination: IPPrefix(host: intent.destination),
                        traffic: traffic)
                    desired[id.from, default: ([], [])].policies.append(
                        SecurityPolicy(
                            selector: selector, direction: .outbound, priority: input.priority,
                            template: PolicyTemplate(
                                family: id.family, spi: final.spi, reqid: input.reqid, isOptional: false)))
                    desired[id.to, default: ([], [])].policies.append(
                        SecurityPolicy(
                            selector: selector, direction: .inbound, priority: input.priority,
                            template: PolicyTemplate(
                                family: id.family, spi: nil, reqid: input.reqid,
                                isOptional: intent.enforcement == .permissive)))
                }
            }
            records[id] = record
            if record != original, !record.generations.isEmpty { plan.recordUpdates[id] = record }
        }

        for node in input.observations.keys.sorted() {
            guard let observation = input.observations[node] else { continue }
            let wanted = desired[node] ?? ([], [])
            let operations = NodeDiff.operations(
                observed: observation, desiredSAs: wanted.sas.filter { isHeld(by: node, $0, index: index) },
                desiredPolicies: wanted.policies)
            for operation in operations {
                if let staged = stage(operation, on: node, index: index, input: input, plan: &plan) {
                    plan.append(PlannedOperation(node: node, operation: staged, channel: channel(of: staged, index: index)))
                }
            }
        }

        for (id, record) in records {
            let step = step(of: record, plan: plan, input: input)
            plan.steps[id] = step
            if record.step != step.rawValue, !record.generations.isEmpty {
                var updated = plan.recordUpdates[id] ?? record
                updated.step = step.rawValue
                updated.stepChangedAt = input.now
                plan.recordUpdates[id] = updated
            }
            if input.intent.channel(id) == nil, record.generations.allSatisfy({ $0.state == .retired }) {
                plan.removedChannels.append(id)
                plan.recordUpdates[id] = nil
            }
        }
        plan.generationRequests.sort { $0.channel < $1.channel }
        plan.blocked.sort { $0.channel < $1.channel }
        return plan
    }

    // MARK: - Generations

    /// Moves generations along from what the kernels show: a pinned pending generation becomes
    /// active (the switch), a tampered one is burned, one gone from both nodes is retired; and
    /// asks for a new generation where the channel needs one.
    private func advanceGenerations(_ record: inout ChannelRecord, intent: ChannelIntent?, index: FleetIndex,
                                    input: PlanningInput, plan: inout PassPlan) {
        let id = record.id
        let sender = input.observations[id.from] != nil
        let receiver = input.observations[id.to] != nil
        var burned: GenerationNeed.Reason?

        for position in record.generations.indices {
            let generation = record.generations[position]
            let saID = SAIdentifier(destination: generation.destination, spi: generation.spi)
            let expected = securityAssociation(generation, input: input)
            switch generation.state {
            case .pending, .active:
                // A tampered SA (same SPI, other key, cipher or addresses) burns the generation.
                let tampered = [id.from, id.to].contains { node in
                    index.sa(saID, on: node).map { !$0.hasSameConfiguration(as: expected) } ?? false
                }
                if tampered || intent == nil {
                    record.generations[position].state = .retiring
                    record.generations[position].supersededAt = record.generations[position].supersededAt ?? input.now
                    if tampered { burned = .keyMismatch }
                    continue
                }
                if generation.state == .pending, sender, index.pins(saID, on: id.from) {
                    for other in record.generations.indices where record.generations[other].state == .active {
                        record.generations[other].state = .retiring
                        record.generations[other].supersededAt = input.now
                    }
                    record.generations[position].state = .active
                    record.generations[position].activatedAt = input.now
                }
            case .retiring:
                let senderDone: Bool
                switch index.peer(owning: generation.source, input: input) {
                case .observed(let node): senderDone = index.sa(saID, on: node) == nil && !index.pins(saID, on: node)
                case .gone: senderDone = true
                case .unreachable: senderDone = false
                }
                let receiverDone: Bool
                switch index.peer(owning: generation.destination, input: input) {
                case .observed(let node): receiverDone = index.sa(saID, on: node) == nil
                case .gone: receiverDone = true
                case .unreachable: receiverDone = false
                }
                if senderDone && receiverDone {
                    record.generations[position].state = .retired
                    record.generations[position].retiredAt = input.now
                }
            case .retired:
                break
            }
        }

        guard let intent else { return }
        if !sender || !receiver {
            let missing = [id.from, id.to].filter { input.observations[$0] == nil }
            plan.blocked.append(BlockedChannel(
                channel: id,
                reason: missing.map { "node \($0) did not answer: \(input.unreachable[$0] ?? "unreachable")" }
                    .joined(separator: "; ")))
            return
        }
        guard !record.generations.contains(where: { $0.state == .pending }) else { return }
        let reason = burned ?? rekeyReason(record, intent: intent, index: index, input: input)
        if let reason {
            let avoiding = Set(
                (input.observations[id.to]?.foreignSPIs ?? []).filter { $0.destination == intent.destination }
                    .map(\.spi))
            plan.generationRequests.append(GenerationNeed(
                request: GenerationRequest(
                    channel: id, cipher: intent.cipher, source: intent.source, destination: intent.destination,
                    avoiding: avoiding),
                reason: reason))
        }
    }

    /// Why the channel needs a new generation now, or nil when its active one is good.
    private func rekeyReason(_ record: ChannelRecord, intent: ChannelIntent, index: FleetIndex,
                             input: PlanningInput) -> GenerationNeed.Reason? {
        guard let active = record.generations.last(where: { $0.state == .active }) else { return .new }
        let id = record.id
        if active.source != intent.source || active.destination != intent.destination { return .readdressed }
        if active.cipher != intent.cipher { return .cipherChanged }
        let saID = SAIdentifier(destination: active.destination, spi: active.spi)
        let outbound = index.sa(saID, on: id.from)
        if index.sa(saID, on: id.to) == nil || outbound == nil { return .lostState }
        if active.createdAt.addingTimeInterval(intent.rekey.every.timeInterval) <= input.now { return .age }
        if let limit = intent.rekey.packets, let outbound, outbound.counters.packets >= limit { return .packets }
        if let requested = input.rekeyRequests[id], requested > active.createdAt { return .requested }
        return nil
    }

    // MARK: - Staging

    /// Decides whether an operation of the diff may go now, in another form, or not yet.
    private func stage(_ operation: KernelOperation, on node: String, index: FleetIndex, input: PlanningInput,
                       plan: inout PassPlan) -> KernelOperation? {
        switch operation {
        case .addSA(let sa):
            // Only a pending generation is ever installed; an active one that went missing is burned.
            guard let generation = index.generationBySA[sa.identifier], generation.state == .pending else { return nil }
            if node == generation.channel.to || disabledRules.contains(.receiverFirst) { return operation }
            let receiver = generation.channel.to
            return index.sa(sa.identifier, on: receiver)?.hasSameConfiguration(as: sa) == true ? operation : nil

        case .addPolicy(let policy), .updatePolicy(let policy):
            if policy.direction == .outbound {
                guard let spi = policy.template.spi else { return nil }
                let saID = SAIdentifier(destination: policy.selector.destination.address, spi: spi)
                if disabledRules.contains(.receiverFirst) { return operation }
                guard index.sa(saID, on: node) != nil else { return nil }
                guard case .observed(let receiver) = index.peer(owning: saID.destination, input: input),
                    index.sa(saID, on: receiver) != nil,
                    index.policy(PolicyIdentifier(selector: policy.selector, direction: .inbound), on: receiver) != nil
                else { return nil }
                return operation
            }
            guard !policy.template.isOptional, !disabledRules.contains(.enforceAfterSender) else { return operation }
            if case .observed(let sender) = index.peer(owning: policy.selector.source.address, input: input),
                index.encrypts(policy.selector, sender: sender, receiver: node)
            {
                return operation
            }
            var relaxed = policy
            relaxed.template.isOptional = true
            if let existing = index.policy(policy.identifier, on: node) {
                return existing.hasSameConfiguration(as: relaxed) ? nil : .updatePolicy(relaxed)
            }
            return .addPolicy(relaxed)

        case .deletePolicy(let id):
            guard let existing = index.policy(id, on: node) else { return nil }
            switch id.direction {
            case .inbound:
                if !existing.template.isOptional {
                    var relaxed = existing
                    relaxed.template.isOptional = true
                    return .updatePolicy(relaxed)
                }
                switch index.peer(owning: id.selector.source.address, input: input) {
                case .gone: return operation
                case .unreachable: return nil
                case .observed(let sender):
                    let outbound = PolicyIdentifier(selector: id.selector, direction: .outbound)
                    return index.policy(outbound, on: sender) == nil ? operation : nil
                }
            case .outbound:
                switch index.peer(owning: id.selector.destination.address, input: input) {
                case .gone: return operation
                case .unreachable: return nil
                case .observed(let receiver):
                    let inbound = index.policy(PolicyIdentifier(selector: id.selector, direction: .inbound), on: receiver)
                    return inbound == nil || inbound?.template.isOptional == true ? operation : nil
                }
            case .forward:
                return operation
            }

        case .deleteSA(let id):
            guard let existing = index.sa(id, on: node) else { return nil }
            if index.addressOwner[id.destination] != node {
                return index.pins(id, on: node) ? nil : operation
            }
            switch index.peer(owning: existing.source, input: input) {
            case .unreachable: return nil
            case .observed(let sender):
                if !disabledRules.contains(.senderStopsFirst), index.pins(id, on: sender) || index.sa(id, on: sender) != nil {
                    return nil
                }
            case .gone: break
            }
            if let generation = index.generationBySA[id], let superseded = generation.supersededAt {
                let drain = input.intent.channel(generation.channel)?.drain ?? input.defaultDrain
                let deadline = superseded.addingTimeInterval(drain.timeInterval)
                if input.now < deadline {
                    plan.wait(until: deadline)
                    return nil
                }
            }
            return operation
        }
    }


    /// True when `node` is the sender or the receiver of the generation the SA belongs to.
    private func isHeld(by node: String, _ sa: SecurityAssociation, index: FleetIndex) -> Bool {
        guard let generation = index.generationBySA[sa.identifier] else { return false }
        return node == generation.channel.from || node == generation.channel.to
    }

    // MARK: - Helpers

    private func securityAssociation(_ generation: Generation, input: PlanningInput) -> SecurityAssociation {
        SecurityAssociation(
            source: generation.source, destination: generation.destination, spi: generation.spi, reqid: input.reqid,
            cipher: generation.cipher, key: .material(generation.key))
    }

    private func channel(of operation: KernelOperation, index: FleetIndex) -> ChannelID? {
        switch operation {
        case .addSA(let sa): return index.generationBySA[sa.identifier]?.channel
        case .deleteSA(let id): return index.generationBySA[id]?.channel
        case .addPolicy(let policy), .updatePolicy(let policy): return channel(of: policy.selector, index: index)
        case .deletePolicy(let id): return channel(of: id.selector, index: index)
        }
    }

    private func channel(of selector: PolicySelector, index: FleetIndex) -> ChannelID? {
        guard let from = index.addressOwner[selector.source.address],
            let to = index.addressOwner[selector.destination.address]
        else { return nil }
        return ChannelID(from: from, to: to, family: selector.family)
    }

    private func step(of record: ChannelRecord, plan: PassPlan, input: PlanningInput) -> ChannelStep {
        let id = record.id
        guard input.intent.channel(id) != nil else { return .removing }
        if plan.blocked.contains(where: { $0.channel == id }) { return .blocked }
        let states = record.generations.map(\.state)
        if states.contains(.pending) { return states.contains(.active) ? .rekeying : .creating }
        if !states.contains(.active) { return plan.generationRequests.contains { $0.channel == id } ? .new : .creating }
        if states.contains(.retiring) { return .draining }
        let busy = plan.operations.values.contains { $0.contains { $0.channel == id } }
        guard busy else { return .established }
        let previous = ChannelStep(rawValue: record.step)
        return previous == .new || previous == .creating ? .creating : .updating
    }
}

extension Duration {
    /// The duration in seconds, as Foundation's `TimeInterval`.
    var timeInterval: TimeInterval {
        let parts = components
        return TimeInterval(parts.seconds) + TimeInterval(parts.attoseconds) / 1e18
    }
}
