import DesiredState
import Foundation
import Kernel
import MeshwardCore
import Synchronization

/// The state of planning one pass, or one chunk of its channels: the pass's read-only input and
/// index, the plan so far, each node's work and claims. `FleetPlanner.plan(_:)` makes one per
/// chunk, merges them in channel order, and stages the objects no channel claimed on the result.
///
/// Its methods are split by concern: generations (`PassPlanning+Generations.swift`), the
/// per-channel diff (`+Diff`) and the staging gates (`+Gates`).
struct PassPlanning: Sendable {
    /// The staging rules switched off (tests only).
    let rules: Set<FleetPlanner.Rule>
    let input: PlanningInput
    /// Lookups over `input`; grows only when a channel the spec dropped names a node or an
    /// address the spec no longer has.
    var index: FleetIndex
    var plan = PassPlan()
    /// Per node number, in the index's numbering.
    var work: [NodeWork]
    var context = Context()
    var spisInUse = SPIsInUse()
    /// How many of the Store's channels the spec still names (the rest are being removed).
    var matched = 0
    /// The records `finish` changed, in planning order; `finishedPlan` keys them into the plan's
    /// `recordUpdates` at once (a dictionary grown one channel at a time, and merged chunk by
    /// chunk, spent more time rehashing than planning when every channel changes).
    var updatedRecords: [ChannelRecord] = []
    /// The operations of the chunks `absorb` took, per chunk and node, in channel order (this
    /// planning's own from before the first `absorb` first), and their changed records:
    /// `finishedPlan` joins them with what `work` and `updatedRecords` hold by then. Appended to
    /// this planning's lists at every `absorb`, and the lists joined again at the end, each
    /// operation was copied twice, on one thread.
    var absorbedOperations: [[NodeOperations]] = []
    var absorbedRecords: [[ChannelRecord]] = []
    /// Whether `finishedPlan` joins the nodes' operations on every core (a pass planned in
    /// chunks is; the nodes' lists are independent).
    var joinsAcrossThreads = false

    init(rules: Set<FleetPlanner.Rule>, input: PlanningInput, index: FleetIndex) {
        self.rules = rules
        self.input = input
        self.index = index
        work = []
        prepareWork()
    }

    /// One node's share of a pass: its operations and what its observed objects' channels claimed.
    struct NodeWork: Sendable {
        var operations = NodeOperations()
        var claimedSAs: [Bool] = []
        var claimedPolicies: [Bool] = []
    }

    /// One node's operations, in the order they must be sent: SAs added, policies added or
    /// replaced, policies removed, SAs removed.
    struct NodeOperations: Sendable {
        var addSAs: [PlannedOperation] = []
        var writePolicies: [PlannedOperation] = []
        var deletePolicies: [PlannedOperation] = []
        var deleteSAs: [PlannedOperation] = []

        /// The operations of `parts` (chunks in channel order) in sending order: every part's
        /// SAs added, then every part's policies written, and so on. A node with one non-empty
        /// list gets that list itself, not a copy.
        static func joined(_ parts: [NodeOperations]) -> [PlannedOperation] {
            let lists =
                (parts.map(\.addSAs) + parts.map(\.writePolicies) + parts.map(\.deletePolicies)
                + parts.map(\.deleteSAs)).filter { !$0.isEmpty }
            if lists.count <= 1 { return lists.first ?? [] }
            var all: [PlannedOperation] = []
            all.reserveCapacity(lists.reduce(0) { $0 + $1.count })
            for list in lists { all.append(contentsOf: list) }
            return all
        }
    }

    /// What the planner counts while it goes.
    struct Context: Sendable {
        /// Operations staged so far.
        var operations = 0
        /// Channels that got operations for objects no channel claimed (old selectors, old addresses).
        var staleChannels = Set<ChannelID>()
        /// True while the stale objects are being staged.
        var stalePass = false
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

    /// Gives every node the index knows (nodes added since included) its work and claims.
    mutating func prepareWork() {
        while work.count < index.names.count {
            let observation = index.observations[work.count]
            work.append(
                NodeWork(
                    claimedSAs: [Bool](repeating: false, count: observation?.securityAssociations.count ?? 0),
                    claimedPolicies: [Bool](repeating: false, count: observation?.policies.count ?? 0)))
        }
    }

    /// Appends a later chunk: operations keep channel order within each category.
    mutating func absorb(_ other: PassPlanning) {
        if absorbedOperations.isEmpty {
            absorbedOperations.append(work.map(\.operations))
            for node in work.indices { work[node].operations = NodeOperations() }
            absorbedRecords.append(updatedRecords)
            updatedRecords = []
        }
        absorbedOperations.append(other.work.map(\.operations))
        absorbedRecords.append(other.updatedRecords)
        for node in work.indices {
            for position in work[node].claimedSAs.indices where other.work[node].claimedSAs[position] {
                work[node].claimedSAs[position] = true
            }
            for position in work[node].claimedPolicies.indices where other.work[node].claimedPolicies[position] {
                work[node].claimedPolicies[position] = true
            }
        }
        plan.generationRequests += other.plan.generationRequests
        plan.blocked += other.plan.blocked
        plan.heldCount += other.plan.heldCount
        plan.held += other.plan.held.prefix(max(0, PassPlan.heldSampleLimit - plan.held.count))
        plan.freedUnaccountedSAs += other.plan.freedUnaccountedSAs
        plan.drainsCutShort += other.plan.drainsCutShort
        if let deadline = other.plan.nextDeadline { plan.wait(until: deadline) }
        plan.stepCounts.merge(other.plan.stepCounts, uniquingKeysWith: +)
        context.operations += other.context.operations
        matched += other.matched
    }

    // MARK: - Channels

    /// Plans one channel the spec names: its generations, claims, staged operations and step.
    /// `sender` caches the last sender's number (consecutive channels share their sender).
    mutating func planChannel(_ intent: ChannelIntent, sender: inout (name: String, number: Int)?) {
        let id = intent.id
        let from: Int
        if let sender, sender.name == id.from {
            from = sender.number
        } else {
            guard let number = index.number(id.from) else { return }
            from = number
            sender = (id.from, number)
        }
        guard let to = index.number(id.to) else { return }
        var record: ChannelRecord
        if let stored = input.channels[id] {
            record = stored
            matched += 1
        } else {
            record = ChannelRecord(id: id, step: .new, stepChangedAt: input.now, generations: [])
        }
        var changed = advanceGenerations(&record, intent: intent, from: from, to: to)
        let operationsBefore = context.operations
        if let position = record.generations.lastIndex(where: { $0.state == .pending })
            ?? record.generations.lastIndex(where: { $0.state == .active })
        {
            let final = record.generations[position]
            let switchStaged = diffChannel(intent, final: final, from: from, to: to)
            // The switch is recorded before it is sent: from then on the key counts as used.
            if switchStaged, final.state == .pending, final.switchSentAt == nil {
                record.generations[position].switchSentAt = input.now
                changed = true
            }
        }
        let step = Self.step(
            of: record, live: true, busy: context.operations > operationsBefore,
            blocked: plan.blocked.last?.channel == id, requested: plan.generationRequests.last?.channel == id)
        finish(record, step: step, changed: changed)
    }

    /// Plans one channel only the Store still knows (the spec dropped it): its generations are
    /// superseded and retired as the kernels let go of them; its objects are stale.
    mutating func planRemovedChannel(_ stored: ChannelRecord) {
        var record = stored
        for generation in record.generations { index.learnAddresses(of: generation, input: input) }
        prepareWork()
        guard let from = index.number(record.id.from), let to = index.number(record.id.to) else { return }
        let changed = advanceGenerations(&record, intent: nil, from: from, to: to)
        if record.generations.allSatisfy({ $0.state == .retired }) {
            plan.removedChannels.append(record.id)
            return
        }
        finish(record, step: .removing, changed: changed)
    }

    /// Stages the deletion of every observed object no channel claimed.
    mutating func stageStaleObjects() {
        context.stalePass = true
        for node in work.indices {
            guard let observation = index.observations[node] else { continue }
            for (position, sa) in observation.securityAssociations.enumerated() where !work[node].claimedSAs[position] {
                stage(.deleteSA(sa.identifier), on: node)
            }
            for (position, policy) in observation.policies.enumerated() where !work[node].claimedPolicies[position] {
                stage(.deletePolicy(policy.identifier), on: node)
            }
        }
    }

    /// The pass's plan, once every channel and the stale objects are staged: operations per
    /// node in sending order, established channels that stale objects keep busy marked
    /// updating, finished drains of unaccounted SAs, and stable orders.
    mutating func finishedPlan() -> PassPlan {
        let records = absorbedRecords + [updatedRecords]
        (absorbedRecords, updatedRecords) = ([], [])
        plan.recordUpdates.reserveCapacity(plan.recordUpdates.count + records.reduce(0) { $0 + $1.count })
        for part in records {
            for record in part { plan.recordUpdates[record.id] = record }
        }
        for (node, operations) in joinedOperations() where !operations.isEmpty {
            plan.operations[index.names[node]] = operations
        }
        for id in context.staleChannels where plan.recordUpdates[id] != nil || input.channels[id] != nil {
            guard var record = plan.recordUpdates[id] ?? input.channels[id],
                record.step == .established,
                input.intent.channel(id) != nil
            else { continue }
            record.step = .updating
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
        // A channel blocked by both of its nodes, or by several operations, is listed once.
        var deduplicated: [BlockedChannel] = []
        for blocked in plan.blocked where deduplicated.last?.channel != blocked.channel { deduplicated.append(blocked) }
        plan.blocked = deduplicated
        return plan
    }

    /// Every node's operations in sending order (`NodeOperations.joined`), joined on every
    /// core when `joinsAcrossThreads`; empties `absorbedOperations` and the work's operations.
    private mutating func joinedOperations() -> [(node: Int, operations: [PlannedOperation])] {
        let parts = absorbedOperations + [work.map(\.operations)]
        absorbedOperations = []
        for node in work.indices { work[node].operations = NodeOperations() }
        let nodes = work.count
        @Sendable func join(_ node: Int) -> [PlannedOperation] {
            NodeOperations.joined(parts.map { node < $0.count ? $0[node] : NodeOperations() })
        }
        guard joinsAcrossThreads, nodes > 1 else {
            return (0..<nodes).map { ($0, join($0)) }
        }
        let runs = min(nodes, 4 * ProcessInfo.processInfo.activeProcessorCount)
        let joined = Mutex<[(node: Int, operations: [PlannedOperation])]>([])
        DispatchQueue.concurrentPerform(iterations: runs) { run in
            let part = (nodes * run / runs..<nodes * (run + 1) / runs).map { ($0, join($0)) }
            joined.withLock { $0 += part }
        }
        return joined.withLock { $0 }
    }

    mutating func finish(_ record: ChannelRecord, step: ChannelStep, changed: Bool) {
        plan.stepCounts[step, default: 0] += 1
        guard !record.generations.isEmpty else { return }
        if record.step != step {
            var updated = record
            updated.step = step
            updated.stepChangedAt = input.now
            updatedRecords.append(updated)
        } else if changed {
            updatedRecords.append(record)
        }
    }

    static func step(of record: ChannelRecord, live: Bool, busy: Bool, blocked: Bool, requested: Bool) -> ChannelStep {
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
        let previous = record.step
        return previous == .new || previous == .creating ? .creating : .updating
    }

    // MARK: - Helpers

    static func securityAssociation(_ generation: Generation, reqid: Reqid) -> SecurityAssociation {
        SecurityAssociation(
            source: generation.source, destination: generation.destination, spi: generation.spi, reqid: reqid,
            cipher: generation.cipher, key: .material(generation.key))
    }

    func channel(of operation: KernelOperation) -> ChannelID? {
        switch operation {
        case .addSA(let sa): return index.generation(of: sa.identifier)?.channel
        case .deleteSA(let id): return index.generation(of: id)?.channel
        case .addPolicy(let policy), .updatePolicy(let policy): return channel(of: policy.selector)
        case .deletePolicy(let id): return channel(of: id.selector)
        }
    }

    func channel(of selector: PolicySelector) -> ChannelID? {
        guard let from = index.owner(of: selector.source.address),
            let to = index.owner(of: selector.destination.address)
        else { return nil }
        return ChannelID(from: index.names[from], to: index.names[to], family: selector.family)
    }
}
