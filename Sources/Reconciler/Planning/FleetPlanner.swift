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
        /// An old inbound SA goes only once `drain` has passed since the sender switched away.
        case drainWait
        /// ... and only once its packet counter stopped moving between two observations.
        case counterStopped
        /// Only a pending generation whose switch was never sent is ever installed.
        case installOnlyUnusedPending
        /// An SA goes only once no policy of its node pins it.
        case unpinnedBeforeDelete
        /// On the way out the receiver's inbound policy becomes optional before the sender's
        /// outbound policy goes, and the inbound policy goes only after it.
        case removalReceiverLast
    }

    /// What a gate decides for one operation of the diff.
    enum Decision {
        /// Send it (possibly another operation than the diff's: a relaxed policy instead of a
        /// required one).
        case send(KernelOperation)
        /// Not now: the step before it is not yet seen in the kernels.
        case hold(String)
        /// Not now: a peer it depends on did not answer.
        case blockedBy(String)
        /// Not before this time (a drain).
        case waitUntil(Date)
        /// Nothing to do: the kernel already holds what this pass would send.
        case skip
    }

    /// How many times `drain` an inbound SA whose packet counter keeps moving is kept at most.
    static let drainBound = 10.0

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
        // Recorded drains of unaccounted SAs that their node no longer holds are done.
        for id in input.unaccountedSAsFreedAt.keys {
            if let owner = index.owner(of: id.destination), index.isObserved(owner), index.sa(id, on: owner) == nil {
                plan.forgottenUnaccountedSAs.append(id)
            }
        }
        plan.generationRequests.sort { $0.channel < $1.channel }
        plan.blocked.sort { $0.channel < $1.channel }
        plan.blocked = plan.blocked.enumerated().filter {
            $0.offset == 0 || plan.blocked[$0.offset - 1].channel != $0.element.channel
        }
        .map(\.element)
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
            plan.heldCount += other.plan.heldCount
            plan.held += other.plan.held.prefix(max(0, PassPlan.heldSampleLimit - plan.held.count))
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
            var changed = advanceGenerations(
                &record, intent: intent, from: from, to: to, index: index, input: input, plan: &result.plan,
                spisInUse: &result.spisInUse)
            let operationsBefore = result.context.operations
            if let position = record.generations.lastIndex(where: { $0.state == .pending })
                ?? record.generations.lastIndex(where: { $0.state == .active })
            {
                let final = record.generations[position]
                let switchStaged = diffChannel(
                    intent, final: final, from: from, to: to, index: index, input: input,
                    work: &result.work, context: &result.context, plan: &result.plan)
                // The switch is recorded before it is sent: from then on the key counts as used.
                if switchStaged, final.state == .pending, final.switchSentAt == nil {
                    record.generations[position].switchSentAt = input.now
                    changed = true
                }
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
    /// active (the switch); a tampered one, or one whose addresses or cipher the spec no longer
    /// names, is superseded; a used one (its switch was sent) that lost an SA is burned; one gone
    /// from both nodes is retired. A superseded generation's drain starts when its sender is
    /// seen to no longer pin it, and while it drains the receiver's packet counter is recorded.
    /// Asks for a new generation where the channel needs one. Returns whether the record changed.
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
        let drain = (intent?.drain ?? input.intent.channel(id)?.drain ?? input.defaultDrain).timeInterval

        /// Marks a generation superseded; its drain starts once the sender no longer pins it.
        func supersede(_ position: Int) {
            record.generations[position].state = .retiring
            changed = true
        }

        for position in record.generations.indices {
            let generation = record.generations[position]
            let saID = SAIdentifier(destination: generation.destination, spi: generation.spi)
            switch generation.state {
            case .pending, .active:
                // A tampered SA (same SPI, other key, cipher, addresses or replay settings) burns it.
                let onSender = index.sa(saID, on: from)
                let onReceiver = index.sa(saID, on: to)
                let expected = securityAssociation(generation, reqid: input.reqid)
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
                    if generation.switchSentAt != nil, senderObserved, receiverObserved,
                        onSender == nil || onReceiver == nil
                    {
                        supersede(position)
                        burned = .lostState
                        continue
                    }
                }
                if generation.state == .pending, senderObserved, index.pins(saID, on: from) {
                    for other in record.generations.indices where record.generations[other].state == .active {
                        record.generations[other].state = .retiring
                        record.generations[other].supersededAt = input.now
                        record.generations[other].drainPackets = nil
                        record.generations[other].drainPacketsAt = nil
                        noteDrainCounter(&record.generations[other], on: to, index: index, now: input.now)
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
                    noteDrainCounter(&record.generations[position], on: to, index: index, now: input.now)
                    changed = true
                } else if let superseded = generation.supersededAt,
                    input.now >= superseded.addingTimeInterval(drain),
                    noteDrainCounter(&record.generations[position], on: to, index: index, now: input.now)
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

    /// Records on a draining generation the receiver's inbound SA packet counter when it moved
    /// or was never recorded. Returns whether the generation changed.
    @discardableResult
    private func noteDrainCounter(
        _ generation: inout Generation, on receiver: Int, index: FleetIndex, now: Date
    )
        -> Bool
    {
        guard index.isObserved(receiver),
            let sa = index.sa(SAIdentifier(destination: generation.destination, spi: generation.spi), on: receiver),
            generation.drainPackets != sa.counters.packets || generation.drainPacketsAt == nil
        else { return false }
        generation.drainPackets = sa.counters.packets
        generation.drainPacketsAt = now
        return true
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
    /// Returns whether an outbound policy pinning `final` was staged (the switch, for a pending
    /// generation).
    private func diffChannel(
        _ intent: ChannelIntent, final: Generation, from: Int, to: Int, index: FleetIndex,
        input: PlanningInput, work: inout [NodeWork], context: inout Context,
        plan: inout PassPlan
    ) -> Bool {
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
        var switchStaged = false
        func claimOrWrite(_ policy: SecurityPolicy, on node: Int) {
            guard index.isObserved(node) else { return }
            let staged: KernelOperation?
            if let position = index.policyPosition(policy.identifier, on: node) {
                work[node].claimedPolicies[position] = true
                guard !index.policy(at: position, on: node).hasSameConfiguration(as: policy) else { return }
                staged = stage(
                    .updatePolicy(policy), on: node, index: index, input: input, work: &work, context: &context,
                    plan: &plan, channel: intent.id)
            } else {
                staged = stage(
                    .addPolicy(policy), on: node, index: index, input: input, work: &work, context: &context,
                    plan: &plan, channel: intent.id)
            }
            if policy.direction == .outbound, staged != nil { switchStaged = true }
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
        return switchStaged
    }

    // MARK: - Staging

    /// Asks the gate whether an operation of the diff may go now, in another form, or not yet;
    /// files what goes in the node's work in its diff category and what is held in the plan.
    /// Returns the operation staged, if any.
    @discardableResult
    private func stage(
        _ operation: KernelOperation, on node: Int, index: FleetIndex, input: PlanningInput,
        work: inout [NodeWork], context: inout Context, plan: inout PassPlan,
        generation: Generation? = nil, channel known: ChannelID? = nil
    ) -> KernelOperation? {
        let staged: KernelOperation
        switch gate(operation, on: node, index: index, input: input, plan: &plan, generation: generation) {
        case .send(let decided):
            staged = decided
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
                        channel: known ?? channel(of: operation, index: index), reason: reason))
            } else {
                plan.heldCount += 1
            }
            return nil
        case .blockedBy(let reason):
            if let channel = known ?? channel(of: operation, index: index) {
                if plan.blocked.last?.channel != channel {
                    plan.blocked.append(BlockedChannel(channel: channel, reason: reason))
                }
            } else {
                plan.hold(HeldOperation(node: index.names[node], operation: operation, channel: nil, reason: reason))
            }
            return nil
        }
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
        return staged
    }

    /// The staging rules, one operation at a time, against this pass's observation.
    private func gate(
        _ operation: KernelOperation, on node: Int, index: FleetIndex, input: PlanningInput,
        plan: inout PassPlan, generation known: Generation?
    ) -> Decision {
        func unreachable(_ peer: Int) -> Decision {
            .blockedBy(
                "node \(index.names[peer]) did not answer: \(input.unreachable[index.names[peer]] ?? "unreachable")")
        }
        switch operation {
        case .addSA(let sa):
            // Only a pending generation whose key was never used is installed; an active one
            // that went missing, or one whose switch was sent, is burned (a new generation).
            guard let generation = known ?? index.generation(of: sa.identifier) else {
                return .hold("no generation issued for this SA")
            }
            if !disabledRules.contains(.installOnlyUnusedPending) {
                guard generation.state == .pending else {
                    return .hold("generation is \(generation.state), not pending")
                }
                guard generation.switchSentAt == nil else { return .hold("generation's key was used; it is burned") }
            }
            guard let receiver = index.number(generation.channel.to) else { return .hold("receiver unknown") }
            if node == receiver || disabledRules.contains(.receiverFirst) { return .send(operation) }
            guard index.isObserved(receiver) else { return unreachable(receiver) }
            return index.sa(sa.identifier, on: receiver)?.hasSameConfiguration(as: sa) == true
                ? .send(operation) : .hold("the receiver does not hold the inbound SA yet")

        case .addPolicy(let policy), .updatePolicy(let policy):
            if policy.direction == .outbound {
                guard let spi = policy.template.spi else { return .hold("outbound template pins no SPI") }
                if disabledRules.contains(.receiverFirst) { return .send(operation) }
                let saID = SAIdentifier(destination: policy.selector.destination.address, spi: spi)
                guard index.sa(saID, on: node) != nil else { return .hold("the sender does not hold the SA yet") }
                switch index.peer(owning: saID.destination) {
                case .gone: return .hold("no node owns the destination")
                case .unreachable(let receiver): return unreachable(receiver)
                case .observed(let receiver):
                    guard index.sa(saID, on: receiver) != nil,
                        index.policy(PolicyIdentifier(selector: policy.selector, direction: .inbound), on: receiver)
                            != nil
                    else { return .hold("the receiver does not hold the inbound SA and policy yet") }
                    return .send(operation)
                }
            }
            guard !policy.template.isOptional, !disabledRules.contains(.enforceAfterSender) else {
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
                    ? .hold("the sender does not encrypt yet")
                    : .send(.updatePolicy(relaxed))
            }
            return .send(.addPolicy(relaxed))

        case .deletePolicy(let id):
            guard let existing = index.policy(id, on: node) else { return .skip }
            switch id.direction {
            case .inbound:
                if !existing.template.isOptional, !disabledRules.contains(.removalReceiverLast) {
                    var relaxed = existing
                    relaxed.template.isOptional = true
                    return .send(.updatePolicy(relaxed))
                }
                if disabledRules.contains(.removalReceiverLast) { return .send(operation) }
                switch index.peer(owning: id.selector.source.address) {
                case .gone: return .send(operation)
                case .unreachable(let sender): return unreachable(sender)
                case .observed(let sender):
                    let outbound = PolicyIdentifier(selector: id.selector, direction: .outbound)
                    return index.policy(outbound, on: sender) == nil
                        ? .send(operation) : .hold("the sender still has its outbound policy")
                }
            case .outbound:
                if disabledRules.contains(.removalReceiverLast) { return .send(operation) }
                switch index.peer(owning: id.selector.destination.address) {
                case .gone: return .send(operation)
                case .unreachable(let receiver): return unreachable(receiver)
                case .observed(let receiver):
                    let inbound = index.policy(
                        PolicyIdentifier(selector: id.selector, direction: .inbound), on: receiver)
                    return inbound == nil || inbound?.template.isOptional == true
                        ? .send(operation) : .hold("the receiver still requires ESP")
                }
            case .forward:
                return .send(operation)
            }

        case .deleteSA(let id):
            guard let existing = index.sa(id, on: node) else { return .skip }
            if index.owner(of: id.destination) != node {
                if disabledRules.contains(.unpinnedBeforeDelete) { return .send(operation) }
                return index.pins(id, on: node) ? .hold("a policy of the sender still pins it") : .send(operation)
            }
            var senderIsGone = false
            switch index.peer(owning: existing.source) {
            case .unreachable(let sender): return unreachable(sender)
            case .observed(let sender):
                if !disabledRules.contains(.senderStopsFirst),
                    index.pins(id, on: sender) || index.sa(id, on: sender) != nil
                {
                    return .hold("the sender still pins or holds it")
                }
            case .gone: senderIsGone = true
            }
            if let generation = index.generation(of: id) {
                return drainGate(
                    operation, held: existing, generation: generation, senderIsGone: senderIsGone, input: input,
                    plan: &plan)
            }
            // An SA no generation accounts for (the Store was lost): its drain runs from the
            // first pass that saw its sender stop using it, as recorded in the Store.
            if senderIsGone || disabledRules.contains(.drainWait) { return .send(operation) }
            guard let freed = input.unaccountedSAsFreedAt[id] else {
                plan.freedUnaccountedSAs.append(id)
                return .waitUntil(input.now.addingTimeInterval(input.defaultDrain.timeInterval))
            }
            let deadline = freed.addingTimeInterval(input.defaultDrain.timeInterval)
            return input.now < deadline ? .waitUntil(deadline) : .send(operation)
        }
    }

    /// The drain of an inbound SA of a known generation: it goes once `drain` has passed since
    /// the sender was seen to switch away and its packet counter stopped moving between two
    /// observations at least `recheck` apart; after `drainBound` times `drain` it goes anyway.
    private func drainGate(
        _ operation: KernelOperation, held: SecurityAssociation, generation: Generation, senderIsGone: Bool,
        input: PlanningInput, plan: inout PassPlan
    ) -> Decision {
        if disabledRules.contains(.drainWait) { return .send(operation) }
        let drain = (input.intent.channel(generation.channel)?.drain ?? input.defaultDrain).timeInterval
        guard let superseded = generation.supersededAt else {
            // This pass is the first to see the sender stop: the drain starts now.
            return senderIsGone ? .send(operation) : .waitUntil(input.now.addingTimeInterval(drain))
        }
        let deadline = superseded.addingTimeInterval(drain)
        if input.now < deadline { return .waitUntil(deadline) }
        if disabledRules.contains(.counterStopped) { return .send(operation) }
        let bound = superseded.addingTimeInterval(drain * Self.drainBound)
        if input.now >= bound {
            if generation.drainPackets != held.counters.packets { plan.drainsCutShort.append(held.identifier) }
            return .send(operation)
        }
        let recheck = min(drain, 1)
        if generation.drainPackets == held.counters.packets, let seen = generation.drainPacketsAt {
            let settled = seen.addingTimeInterval(recheck)
            return input.now >= settled ? .send(operation) : .waitUntil(min(settled, bound))
        }
        return .waitUntil(min(input.now.addingTimeInterval(recheck), bound))
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
        guard let from = index.owner(of: selector.source.address),
            let to = index.owner(of: selector.destination.address)
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
