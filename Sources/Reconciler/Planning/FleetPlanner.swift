import DesiredState
import Dispatch
import Foundation
import Kernel
import MeshwardCore
import Store
import Synchronization

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
///
/// The diff is channel-centric: each channel looks up its own objects on its two nodes and
/// claims them; whatever no channel claims is stale. Nothing is sorted or copied per object,
/// so a pass costs one hash lookup per expected object.
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
    /// The fewest channels worth splitting across threads.
    let parallelThreshold: Int
    /// How many chunks to split into; nil for one per processor (at most 8).
    let chunks: Int?

    public init() {
        disabledRules = []
        parallelThreshold = 20_000
        chunks = nil
    }

    init(disabling rules: Set<Rule> = [], parallelThreshold: Int = 20_000, chunks: Int? = nil) {
        disabledRules = rules
        self.parallelThreshold = parallelThreshold
        self.chunks = chunks
    }

    /// One node's share of a pass, in the order operations must be sent: SAs added, policies
    /// added or replaced, policies removed, SAs removed.
    private struct NodeWork: Sendable {
        var addSAs: [PlannedOperation] = []
        var writePolicies: [PlannedOperation] = []
        var deletePolicies: [PlannedOperation] = []
        var deleteSAs: [PlannedOperation] = []
        var claimedSAs: [Bool] = []
        var claimedPolicies: [Bool] = []

        var all: [PlannedOperation] { addSAs + writePolicies + deletePolicies + deleteSAs }
    }

    public func plan(_ input: PlanningInput) -> PassPlan {
        var index = FleetIndex(input: input)

        // Channels the spec names, in contiguous chunks (so consecutive channels share their sender).
        let channels = input.intent.channels
        // Below `parallelThreshold` channels a pass is planned on one thread; above it the
        // channels are split into contiguous chunks planned in parallel and merged in order, so
        // the result is the same either way.
        let chunkCount =
            channels.count < parallelThreshold
            ? 1 : max(1, min(channels.count, chunks ?? min(8, ProcessInfo.processInfo.activeProcessorCount)))
        let bounds = (0...chunkCount).map { channels.count * $0 / chunkCount }
        let results = Mutex<[ChunkResult?]>([ChunkResult?](repeating: nil, count: chunkCount))
        let frozen = index
        DispatchQueue.concurrentPerform(iterations: chunkCount) { chunk in
            let result = planLive(channels[bounds[chunk]..<bounds[chunk + 1]], index: frozen, input: input)
            results.withLock { $0[chunk] = result }
        }
        var merged = ChunkResult(index: index)
        for result in results.withLock({ $0 }) {
            if let result { merged.absorb(result) }
        }
        var plan = merged.plan
        var work = merged.work
        var context = merged.context
        let matched = merged.matched

        func prepareWork() {
            while work.count < index.names.count {
                let observation = index.observations[work.count]
                work.append(
                    NodeWork(
                        claimedSAs: [Bool](repeating: false, count: observation?.securityAssociations.count ?? 0),
                        claimedPolicies: [Bool](repeating: false, count: observation?.policies.count ?? 0)))
            }
        }

        // Channels only the Store still knows: the spec dropped them.
        if matched < input.channels.count {
            let live = Set(input.intent.channels.map(\.id))
            for (id, stored) in input.channels where !live.contains(id) {
                var record = stored
                for generation in record.generations { index.learnAddresses(of: generation, input: input) }
                prepareWork()
                guard let from = index.number(id.from), let to = index.number(id.to) else { continue }
                var unused = SPIsInUse()
                let changed = advanceGenerations(
                    &record, intent: nil, from: from, to: to, index: index, input: input, plan: &plan,
                    spisInUse: &unused)
                if record.generations.allSatisfy({ $0.state == .retired }) {
                    plan.removedChannels.append(id)
                    continue
                }
                finish(record, step: .removing, changed: changed, input: input, plan: &plan)
            }
        }

        // Whatever no channel claimed is stale.
        context.stalePass = true
        for node in work.indices {
            guard let observation = index.observations[node] else { continue }
            for (position, sa) in observation.securityAssociations.enumerated() where !work[node].claimedSAs[position] {
                stage(
                    .deleteSA(sa.identifier), on: node, index: index, input: input, work: &work, context: &context,
                    plan: &plan)
            }
            for (position, policy) in observation.policies.enumerated() where !work[node].claimedPolicies[position] {
                stage(
                    .deletePolicy(policy.identifier), on: node, index: index, input: input, work: &work,
                    context: &context, plan: &plan)
            }
        }
        for node in work.indices {
            let operations = work[node].all
            if !operations.isEmpty { plan.operations[index.names[node]] = operations }
        }

        // A live, established channel that only stale objects keep busy is updating.
        for id in context.staleChannels where plan.recordUpdates[id] != nil || input.channels[id] != nil {
            guard var record = plan.recordUpdates[id] ?? input.channels[id],
                record.step == ChannelStep.established.rawValue,
                input.intent.channel(id) != nil
            else { continue }
            record.step = ChannelStep.updating.rawValue
            record.stepChangedAt = input.now
            plan.recordUpdates[id] = record
            plan.stepCounts[.established, default: 1] -= 1
            plan.stepCounts[.updating, default: 0] += 1
        }
        plan.generationRequests.sort { $0.channel < $1.channel }
        plan.blocked.sort { $0.channel < $1.channel }
        return plan
    }

    /// One chunk's share of a pass: its plan, its operations per node, its claims.
    private struct ChunkResult: Sendable {
        var plan = PassPlan()
        var work: [NodeWork]
        var context = Context()
        var matched = 0
        var spisInUse = SPIsInUse()

        init(index: FleetIndex) {
            work = index.observations.map { observation in
                NodeWork(
                    claimedSAs: [Bool](repeating: false, count: observation?.securityAssociations.count ?? 0),
                    claimedPolicies: [Bool](repeating: false, count: observation?.policies.count ?? 0))
            }
        }

        /// Appends a later chunk: operations keep channel order within each category.
        mutating func absorb(_ other: ChunkResult) {
            for node in work.indices {
                work[node].addSAs += other.work[node].addSAs
                work[node].writePolicies += other.work[node].writePolicies
                work[node].deletePolicies += other.work[node].deletePolicies
                work[node].deleteSAs += other.work[node].deleteSAs
                for position in work[node].claimedSAs.indices where other.work[node].claimedSAs[position] {
                    work[node].claimedSAs[position] = true
                }
                for position in work[node].claimedPolicies.indices where other.work[node].claimedPolicies[position] {
                    work[node].claimedPolicies[position] = true
                }
            }
            plan.recordUpdates.merge(other.plan.recordUpdates) { $1 }
            plan.generationRequests += other.plan.generationRequests
            plan.blocked += other.plan.blocked
            if let deadline = other.plan.nextDeadline { plan.wait(until: deadline) }
            plan.stepCounts.merge(other.plan.stepCounts, uniquingKeysWith: +)
            context.operations += other.context.operations
            matched += other.matched
        }
    }

    /// Plans the channels of `slice`: generations, claims, staged operations, steps.
    private func planLive(_ slice: ArraySlice<ChannelIntent>, index: FleetIndex, input: PlanningInput) -> ChunkResult {
        var result = ChunkResult(index: index)
        var sender: (name: String, number: Int)?
        for intent in slice {
            let id = intent.id
            let from: Int
            if let sender, sender.name == id.from {
                from = sender.number
            } else {
                guard let number = index.number(id.from) else { continue }
                from = number
                sender = (id.from, number)
            }
            guard let to = index.number(id.to) else { continue }
            var record: ChannelRecord
            if let stored = input.channels[id] {
                record = stored
                result.matched += 1
            } else {
                record = ChannelRecord(
                    id: id, step: ChannelStep.new.rawValue, stepChangedAt: input.now, generations: [])
            }
            let changed = advanceGenerations(
                &record, intent: intent, from: from, to: to, index: index, input: input, plan: &result.plan,
                spisInUse: &result.spisInUse)
            let operationsBefore = result.context.operations
            if let final = record.generations.last(where: { $0.state == .pending })
                ?? record.generations.last(where: { $0.state == .active })
            {
                diffChannel(
                    intent, final: final, from: from, to: to, index: index, input: input,
                    work: &result.work, context: &result.context, plan: &result.plan)
            }
            let step = step(
                of: record, live: true, busy: result.context.operations > operationsBefore,
                blocked: result.plan.blocked.last?.channel == id,
                requested: result.plan.generationRequests.last?.channel == id)
            finish(record, step: step, changed: changed, input: input, plan: &result.plan)
        }
        return result
    }

    /// The SPIs a new generation must not take at a destination: foreign SPIs seen there and
    /// the SPIs of every SA of ours there (a stale SA the Store no longer knows included).
    /// Built once per destination per chunk, and only for channels that need a generation.
    struct SPIsInUse: Sendable {
        private var cache: [IPAddress: Set<SPI>] = [:]

        mutating func at(_ destination: IPAddress, on node: Int, input: PlanningInput, index: FleetIndex) -> Set<SPI> {
            if let known = cache[destination] { return known }
            var spis = Set<SPI>()
            if let observation = index.observations[node] {
                for id in observation.foreignSPIs where id.destination == destination { spis.insert(id.spi) }
                for sa in observation.securityAssociations where sa.destination == destination { spis.insert(sa.spi) }
            }
            cache[destination] = spis
            return spis
        }
    }

    /// What the planner counts while it goes.
    private struct Context: Sendable {
        /// Operations staged so far.
        var operations = 0
        /// Channels that got operations for objects no channel claimed (old selectors, old addresses).
        var staleChannels = Set<ChannelID>()
        /// True while the stale objects are being staged.
        var stalePass = false
    }

    private func finish(
        _ record: ChannelRecord, step: ChannelStep, changed: Bool, input: PlanningInput,
        plan: inout PassPlan
    ) {
        plan.stepCounts[step, default: 0] += 1
        guard !record.generations.isEmpty else { return }
        if record.step != step.rawValue {
            var updated = record
            updated.step = step.rawValue
            updated.stepChangedAt = input.now
            plan.recordUpdates[record.id] = updated
        } else if changed {
            plan.recordUpdates[record.id] = record
        }
    }

    // MARK: - Generations

    /// Moves generations along from what the kernels show: a pinned pending generation becomes
    /// active (the switch), a tampered one is burned, one gone from both nodes is retired; and
    /// asks for a new generation where the channel needs one. Returns whether the record changed.
    private func advanceGenerations(
        _ record: inout ChannelRecord, intent: ChannelIntent?, from: Int, to: Int,
        index: FleetIndex, input: PlanningInput, plan: inout PassPlan, spisInUse: inout SPIsInUse
    ) -> Bool {
        let id = record.id
        let senderObserved = index.isObserved(from)
        let receiverObserved = index.isObserved(to)
        var burned: GenerationNeed.Reason?
        var changed = false
        var activeHeld: (sender: SecurityAssociation?, receiver: SecurityAssociation?) = (nil, nil)

        for position in record.generations.indices {
            let generation = record.generations[position]
            let saID = SAIdentifier(destination: generation.destination, spi: generation.spi)
            switch generation.state {
            case .pending, .active:
                // A tampered SA (same SPI, other key, cipher or addresses) burns the generation.
                let onSender = index.sa(saID, on: from)
                let onReceiver = index.sa(saID, on: to)
                let expected = securityAssociation(generation, reqid: input.reqid)
                let tampered =
                    onSender.map { !$0.hasSameConfiguration(as: expected) } ?? false
                    || onReceiver.map { !$0.hasSameConfiguration(as: expected) } ?? false
                if generation.state == .active { activeHeld = (onSender, onReceiver) }
                if tampered || intent == nil {
                    record.generations[position].state = .retiring
                    record.generations[position].supersededAt = generation.supersededAt ?? input.now
                    changed = true
                    if tampered { burned = .keyMismatch }
                    continue
                }
                if generation.state == .pending, senderObserved, index.pins(saID, on: from) {
                    for other in record.generations.indices where record.generations[other].state == .active {
                        record.generations[other].state = .retiring
                        record.generations[other].supersededAt = input.now
                    }
                    record.generations[position].state = .active
                    record.generations[position].activatedAt = input.now
                    activeHeld = (onSender, onReceiver)
                    changed = true
                }
            case .retiring:
                let senderDone: Bool
                switch index.peer(owning: generation.source) {
                case .observed(let node): senderDone = index.sa(saID, on: node) == nil && !index.pins(saID, on: node)
                case .gone: senderDone = true
                case .unreachable: senderDone = false
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
                }
            case .retired:
                break
            }
        }

        guard let intent else { return changed }
        if !senderObserved || !receiverObserved {
            let missing = [id.from, id.to].filter { input.observations[$0] == nil }
            plan.blocked.append(
                BlockedChannel(
                    channel: id,
                    reason: missing.map { "node \($0) did not answer: \(input.unreachable[$0] ?? "unreachable")" }
                        .joined(separator: "; ")))
            return changed
        }
        guard !record.generations.contains(where: { $0.state == .pending }) else { return changed }
        if let reason = burned ?? rekeyReason(record, intent: intent, held: activeHeld, input: input) {
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

    /// Why the channel needs a new generation now, or nil when its active one is good.
    private func rekeyReason(
        _ record: ChannelRecord, intent: ChannelIntent,
        held: (sender: SecurityAssociation?, receiver: SecurityAssociation?),
        input: PlanningInput
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

    // MARK: - Diff

    /// Claims the channel's objects on its two nodes and stages whatever is missing or differs.
    private func diffChannel(
        _ intent: ChannelIntent, final: Generation, from: Int, to: Int, index: FleetIndex,
        input: PlanningInput, work: inout [NodeWork], context: inout Context,
        plan: inout PassPlan
    ) {
        let expected = securityAssociation(final, reqid: input.reqid)
        let saID = expected.identifier
        func claimOrAdd(on node: Int) {
            guard index.isObserved(node) else { return }
            if let position = index.saPosition(saID, on: node) {
                work[node].claimedSAs[position] = true
                if index.holdsDifferent(saID, expected, on: node) {
                    stage(
                        .deleteSA(saID), on: node, index: index, input: input, work: &work, context: &context,
                        plan: &plan, channel: intent.id)
                }
            } else {
                stage(
                    .addSA(expected), on: node, index: index, input: input, work: &work, context: &context,
                    plan: &plan, generation: final, channel: intent.id)
            }
        }
        claimOrAdd(on: to)
        claimOrAdd(on: from)
        func claimOrWrite(_ policy: SecurityPolicy, on node: Int) {
            guard index.isObserved(node) else { return }
            if let position = index.policyPosition(policy.identifier, on: node) {
                work[node].claimedPolicies[position] = true
                if !index.policy(at: position, on: node).hasSameConfiguration(as: policy) {
                    stage(
                        .updatePolicy(policy), on: node, index: index, input: input, work: &work, context: &context,
                        plan: &plan, channel: intent.id)
                }
            } else {
                stage(
                    .addPolicy(policy), on: node, index: index, input: input, work: &work, context: &context,
                    plan: &plan, channel: intent.id)
            }
        }
        for traffic in intent.traffic {
            let selector = PolicySelector(
                source: IPPrefix(host: intent.source), destination: IPPrefix(host: intent.destination), traffic: traffic
            )
            let outbound = SecurityPolicy(
                selector: selector, direction: .outbound, priority: input.priority,
                template: PolicyTemplate(
                    family: intent.id.family, spi: final.spi, reqid: input.reqid, isOptional: false))
            let inbound = SecurityPolicy(
                selector: selector, direction: .inbound, priority: input.priority,
                template: PolicyTemplate(
                    family: intent.id.family, spi: nil, reqid: input.reqid,
                    isOptional: intent.enforcement == .permissive))
            claimOrWrite(outbound, on: from)
            claimOrWrite(inbound, on: to)
        }
    }

    // MARK: - Staging

    /// Decides whether an operation of the diff may go now, in another form, or not yet, and
    /// files it in the node's work in its diff category.
    private func stage(
        _ operation: KernelOperation, on node: Int, index: FleetIndex, input: PlanningInput,
        work: inout [NodeWork], context: inout Context, plan: inout PassPlan,
        generation: Generation? = nil, channel known: ChannelID? = nil
    ) {
        guard let staged = gate(operation, on: node, index: index, input: input, plan: &plan, generation: generation)
        else { return }
        let channel = known ?? channel(of: staged, index: index)
        context.operations += 1
        if context.stalePass, let channel { context.staleChannels.insert(channel) }
        let planned = PlannedOperation(node: index.names[node], operation: staged, channel: channel)
        switch operation {
        case .addSA: work[node].addSAs.append(planned)
        case .addPolicy, .updatePolicy: work[node].writePolicies.append(planned)
        case .deletePolicy: work[node].deletePolicies.append(planned)
        case .deleteSA: work[node].deleteSAs.append(planned)
        }
    }

    private func gate(
        _ operation: KernelOperation, on node: Int, index: FleetIndex, input: PlanningInput,
        plan: inout PassPlan, generation known: Generation?
    ) -> KernelOperation? {
        switch operation {
        case .addSA(let sa):
            // Only a pending generation is ever installed; an active one that went missing is burned.
            guard let generation = known ?? index.generation(of: sa.identifier), generation.state == .pending
            else { return nil }
            guard let receiver = index.number(generation.channel.to) else { return nil }
            if node == receiver || disabledRules.contains(.receiverFirst) { return operation }
            return index.sa(sa.identifier, on: receiver)?.hasSameConfiguration(as: sa) == true ? operation : nil

        case .addPolicy(let policy), .updatePolicy(let policy):
            if policy.direction == .outbound {
                guard let spi = policy.template.spi else { return nil }
                if disabledRules.contains(.receiverFirst) { return operation }
                let saID = SAIdentifier(destination: policy.selector.destination.address, spi: spi)
                guard index.sa(saID, on: node) != nil else { return nil }
                guard case .observed(let receiver) = index.peer(owning: saID.destination),
                    index.sa(saID, on: receiver) != nil,
                    index.policy(PolicyIdentifier(selector: policy.selector, direction: .inbound), on: receiver) != nil
                else { return nil }
                return operation
            }
            guard !policy.template.isOptional, !disabledRules.contains(.enforceAfterSender) else { return operation }
            if case .observed(let sender) = index.peer(owning: policy.selector.source.address),
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
                switch index.peer(owning: id.selector.source.address) {
                case .gone: return operation
                case .unreachable: return nil
                case .observed(let sender):
                    let outbound = PolicyIdentifier(selector: id.selector, direction: .outbound)
                    return index.policy(outbound, on: sender) == nil ? operation : nil
                }
            case .outbound:
                switch index.peer(owning: id.selector.destination.address) {
                case .gone: return operation
                case .unreachable: return nil
                case .observed(let receiver):
                    let inbound = index.policy(
                        PolicyIdentifier(selector: id.selector, direction: .inbound), on: receiver)
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
            var senderIsGone = false
            switch index.peer(owning: existing.source) {
            case .unreachable: return nil
            case .observed(let sender):
                if !disabledRules.contains(.senderStopsFirst),
                    index.pins(id, on: sender) || index.sa(id, on: sender) != nil
                {
                    return nil
                }
            case .gone: senderIsGone = true
            }
            if let generation = index.generation(of: id) {
                if let superseded = generation.supersededAt {
                    let drain = input.intent.channel(generation.channel)?.drain ?? input.defaultDrain
                    let deadline = superseded.addingTimeInterval(drain.timeInterval)
                    if input.now < deadline {
                        plan.wait(until: deadline)
                        return nil
                    }
                }
                return operation
            }
            // An SA no generation accounts for (the Store was lost): its drain runs from the
            // first pass that saw its sender stop using it. A sender that is gone sends nothing.
            if senderIsGone { return operation }
            guard let freed = input.unaccountedSAsFreedAt[id] else {
                plan.freedUnaccountedSAs.append(id)
                plan.wait(until: input.now.addingTimeInterval(input.defaultDrain.timeInterval))
                return nil
            }
            let deadline = freed.addingTimeInterval(input.defaultDrain.timeInterval)
            if input.now < deadline {
                plan.wait(until: deadline)
                return nil
            }
            return operation
        }
    }

    // MARK: - Helpers

    private func securityAssociation(_ generation: Generation, reqid: Reqid) -> SecurityAssociation {
        SecurityAssociation(
            source: generation.source, destination: generation.destination, spi: generation.spi, reqid: reqid,
            cipher: generation.cipher, key: .material(generation.key))
    }

    private func channel(of operation: KernelOperation, index: FleetIndex) -> ChannelID? {
        switch operation {
        case .addSA(let sa): return index.generation(of: sa.identifier)?.channel
        case .deleteSA(let id): return index.generation(of: id)?.channel
        case .addPolicy(let policy), .updatePolicy(let policy): return channel(of: policy.selector, index: index)
        case .deletePolicy(let id): return channel(of: id.selector, index: index)
        }
    }

    private func channel(of selector: PolicySelector, index: FleetIndex) -> ChannelID? {
        guard let from = index.addressOwner[selector.source.address],
            let to = index.addressOwner[selector.destination.address]
        else { return nil }
        return ChannelID(from: index.names[from], to: index.names[to], family: selector.family)
    }

    private func step(of record: ChannelRecord, live: Bool, busy: Bool, blocked: Bool, requested: Bool) -> ChannelStep {
        guard live else { return .removing }
        if blocked { return .blocked }
        var pending = false
        var active = false
        var retiring = false
        for generation in record.generations {
            switch generation.state {
            case .pending: pending = true
            case .active: active = true
            case .retiring: retiring = true
            case .retired: break
            }
        }
        if pending { return active ? .rekeying : .creating }
        if !active { return requested ? .new : .creating }
        if retiring { return .draining }
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
