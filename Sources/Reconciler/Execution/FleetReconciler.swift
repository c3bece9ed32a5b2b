import DesiredState
import Foundation
import Kernel
import Logging
import MeshwardCore
import Store
import Synchronization

/// Runs passes: observe every node once, plan, issue the generations the plan asks for, record
/// the generation changes, then send each node its operations (nodes in parallel) and journal
/// every answer.
///
/// The Store is written before any kernel is touched, so a controller killed at any instant
/// restarts from a state that covers everything a kernel may hold.
public final class FleetReconciler: Sendable {
    private let store: any PassStore
    private let kernels: any FleetKernels
    private let clock: any ReconcilerClock
    private let logger: Logger
    private let planner: FleetPlanner
    private let fence: any WriteFence
    private let recorder: any PassRecorder
    /// The cache a pass may plan on (`preparePass(planningOnCache:)`); nil reads every node afresh.
    private let cache: (any ObservationCache)?
    /// Whether a pass planned on the cache reads afresh what it would act on (always, but for
    /// the negative control of the tests that check it).
    let readsAfreshBeforeActing: Bool
    /// Whether every operation sent is journaled (planned, then answered); false only for a
    /// rehearsal, whose journal nobody reads (`plan`: millions of entries at fleet scale).
    let journalsOperations: Bool
    /// The reqid that marks Meshward's objects.
    public let reqid: Reqid

    /// How long one observation of a node's kernel may wait for its answer: a slow or hung node
    /// costs one deadline, never a stuck pass. An observation changes nothing, so it may outlast
    /// the lease; a batch may not (`batchTimeout`).
    public static let kernelCallTimeout: Duration = .seconds(30)

    /// How long one node's batch may wait for its answer, on the reconciler's clock (and as the
    /// agent's gRPC deadline, the netlink socket's receive bound): a third of the 15 s lease, so
    /// that a batch started with `kernelCallBound` of the lease left has ended, answered or not,
    /// well before it lapses. A batch whose answer had not come by then is indeterminate.
    public static let batchTimeout: Duration = .seconds(5)

    /// The longest one node's batch may take: its deadline (`batchTimeout`, 5 s) and a 2 s
    /// margin for what the deadline does not cover (the moments between the check and the
    /// call's start on a loaded machine, the agent finishing a batch it had begun). A pass sends
    /// a node its batch only while at least this much of the lease, confirmed right before that
    /// batch, is left.
    public static let kernelCallBound: TimeInterval = 7

    /// The most passes one run makes before it calls the fleet unconvergeable. A channel needs
    /// at most 6 passes for any one change (docs/architecture.md); the rest is margin for
    /// retries after refused operations.
    public static let passLimit = 64

    /// How many passes in a row may see refused operations before a run gives up.
    public static let failingPassLimit = 4

    /// How many nodes a pass observes, and sends batches to, at once unless told otherwise:
    /// enough to keep a fleet of thousands of agents within a second a pass, few enough that the
    /// connections, the replies being decoded and the simulated kernels' locks stay bounded.
    public static let observeParallelism = 64

    /// The deadline this reconciler gives each observation (`kernelCallTimeout` unless a test
    /// shortens it).
    let callTimeout: Duration

    /// The deadline this reconciler gives each batch (`batchTimeout`, or `callTimeout` when a
    /// test shortens it below that).
    let batchDeadline: Duration

    /// How many observations are in flight at most (`observeParallelism` unless told otherwise).
    let observeLimit: Int

    public convenience init(
        store: any PassStore, kernels: any FleetKernels, reqid: Reqid, clock: any ReconcilerClock,
        logger: Logger, planner: FleetPlanner = FleetPlanner(), fence: any WriteFence = UnfencedWrites(),
        recorder: any PassRecorder = DiscardingPassRecorder(), callTimeout: Duration = kernelCallTimeout,
        observeParallelism: Int = observeParallelism, cache: (any ObservationCache)? = nil,
        journalsOperations: Bool = true
    ) {
        self.init(
            store: store, kernels: kernels, reqid: reqid, clock: clock, logger: logger, planner: planner, fence: fence,
            recorder: recorder, callTimeout: callTimeout, observeParallelism: observeParallelism, cache: cache,
            readsAfreshBeforeActing: true, journalsOperations: journalsOperations)
    }

    /// The reconciler, with the fresh reads before acting switched off when
    /// `readsAfreshBeforeActing` is false: only for the tests that show their check can fail.
    init(
        store: any PassStore, kernels: any FleetKernels, reqid: Reqid, clock: any ReconcilerClock,
        logger: Logger, planner: FleetPlanner = FleetPlanner(), fence: any WriteFence = UnfencedWrites(),
        recorder: any PassRecorder = DiscardingPassRecorder(), callTimeout: Duration = kernelCallTimeout,
        observeParallelism: Int = observeParallelism, cache: (any ObservationCache)?, readsAfreshBeforeActing: Bool,
        journalsOperations: Bool = true
    ) {
        self.readsAfreshBeforeActing = readsAfreshBeforeActing
        self.journalsOperations = journalsOperations
        precondition(observeParallelism > 0, "a pass must observe at least one node at a time")
        self.observeLimit = observeParallelism
        self.recorder = recorder
        self.cache = cache
        self.callTimeout = min(callTimeout, Self.kernelCallTimeout)
        self.batchDeadline = min(callTimeout, Self.batchTimeout)
        self.planner = planner
        self.fence = fence
        self.store = store
        self.kernels = kernels
        self.reqid = reqid
        self.clock = clock
        self.logger = logger
    }

    /// Observes `nodes` concurrently, at most `observeLimit` at once, each under its own
    /// deadline (`callTimeout` from the moment its call starts, on the reconciler's clock). A
    /// node that throws, or has not answered by its deadline, is reported unreachable with the
    /// reason; a hung node costs one deadline and never holds up the pass, even when its kernel
    /// ignores the deadline.
    ///
    /// `enrolling` names the unreachable nodes whose agent waits for enrollment.
    public func observe(
        _ nodes: Set<String>
    ) async -> (observations: [String: NodeObservation], unreachable: [String: String], enrolling: Set<String>) {
        await withTaskGroup(of: (String, Result<NodeObservation, NodeUnreachable>).self) { group in
            var waiting = nodes.sorted().makeIterator()
            func start(_ node: String) {
                group.addTask { [kernels, clock, callTimeout] in
                    (node, await Self.observe(node, kernels: kernels, clock: clock, timeout: callTimeout))
                }
            }
            for _ in 0..<observeLimit {
                guard let node = waiting.next() else { break }
                start(node)
            }
            var observations: [String: NodeObservation] = [:]
            var unreachable: [String: String] = [:]
            var enrolling: Set<String> = []
            while let (node, result) = await group.next() {
                switch result {
                case .success(let observation): observations[node] = observation
                case .failure(let problem):
                    unreachable[node] = problem.reason
                    if problem.waitingForEnrollment { enrolling.insert(node) }
                }
                if let next = waiting.next() { start(next) }
            }
            return (observations, unreachable, enrolling)
        }
    }

    /// Why one node's observation failed, as the pass reports it.
    struct NodeUnreachable: Error {
        let reason: String
        /// Whether its agent waits for enrollment (`KernelError.waitingForEnrollment`).
        var waitingForEnrollment = false
    }

    /// Observes one node (connecting it first when needed) under a deadline of `timeout` on
    /// `clock`.
    private static func observe(
        _ node: String, kernels: any FleetKernels, clock: any ReconcilerClock, timeout: Duration
    ) async -> Result<NodeObservation, NodeUnreachable> {
        let limit = "its deadline of \(timeout.secondsText) for one observation"
        do {
            return .success(
                try await DeadlineRace.run(clock: clock, timeout: timeout) { deadline in
                    try await kernels.kernel(for: node).observe(deadline: deadline)
                })
        } catch let late as DeadlineRace.DeadlinePassed {
            let cause = late.underlying.map { ": \($0)" } ?? ""
            return .failure(NodeUnreachable(reason: "node \(node) did not answer before \(limit)\(cause)"))
        } catch let error as KernelError {
            if case .waitingForEnrollment = error {
                return .failure(NodeUnreachable(reason: "\(error)", waitingForEnrollment: true))
            }
            return .failure(NodeUnreachable(reason: "\(error)"))
        } catch {
            return .failure(NodeUnreachable(reason: "\(error)"))
        }
    }

    /// `observe(_:)`, giving every reading to the cache (when there is one).
    private func observeAdopting(
        _ nodes: Set<String>
    ) async -> (observations: [String: NodeObservation], unreachable: [String: String], enrolling: Set<String>) {
        let read = await observe(nodes)
        if let cache {
            for (node, reading) in read.observations { cache.adopt(reading, of: node) }
        }
        return read
    }

    /// Each node's peers: the nodes it shares a channel with, in the intent or on record.
    static func peers(intent: FleetIntent, records: [ChannelID: ChannelRecord]) -> [String: Set<String>] {
        var peers: [String: Set<String>] = [:]
        for channel in intent.channels.map(\.id) + Array(records.keys) {
            peers[channel.from, default: []].insert(channel.to)
            peers[channel.to, default: []].insert(channel.from)
        }
        return peers
    }

    /// Runs one pass against `records` (the Store's channels, kept current by the caller).
    public func runPass(
        number: Int, intent: FleetIntent, records: inout [ChannelID: ChannelRecord],
        rekeyRequests: [ChannelID: Date] = [:], defaultDrain: Duration = .seconds(5),
        revision: Int64? = nil, reusing earlier: FleetObservation? = nil, planningOnCache: Bool = false
    ) async throws -> PassReport {
        let prepared = try await preparePass(
            number: number, intent: intent, records: &records, rekeyRequests: rekeyRequests,
            defaultDrain: defaultDrain, reusing: earlier, planningOnCache: planningOnCache)
        return try await execute(prepared, revision: revision)
    }

    /// The first half of a pass: observe every node, plan, issue the generations the plan asks
    /// for and record the generation changes in the Store. No kernel is changed yet.
    ///
    /// `earlier`, when given, is a reading of the fleet made moments before under the same
    /// lease (the plan an interactive `apply` compares): the nodes it settles are not read
    /// again, every other node is.
    ///
    /// `planningOnCache` (with a cache): the nodes the cache stands for are not read; the pass
    /// plans on the cache. When that plan would write or send nothing, the pass ends there,
    /// having called no kernel of those nodes. Otherwise every node the plan acts on and the
    /// other end of each channel it acts on (the nodes its gates consult:
    /// `PassPlan.nodesActedOn(peers:)`) is read afresh, and the pass plans again on that, until
    /// the plan rests on no node it did not read afresh in this pass: nothing is written or
    /// sent on cached facts (`PreparedPass.freshlyRead`).
    public func preparePass(
        number: Int, intent: FleetIntent, records: inout [ChannelID: ChannelRecord],
        rekeyRequests: [ChannelID: Date] = [:], defaultDrain: Duration = .seconds(5),
        reusing earlier: FleetObservation? = nil, planningOnCache: Bool = false
    )
        async throws -> PreparedPass
    {
        let now = clock.now()
        let nodes = kernels.knownNodes.union(intent.nodes.map(\.name))
            .union(records.keys.flatMap { [$0.from, $0.to] })
        let reused = nodes.intersection(earlier?.settled ?? [])
        var cached: [String: NodeObservation] = [:]
        if planningOnCache, let cache {
            for node in nodes.subtracting(reused) {
                if let reading = cache.cachedObservation(of: node) { cached[node] = reading }
            }
        }
        let read = await observeAdopting(nodes.subtracting(reused).subtracting(cached.keys))
        var observations = read.observations
        var unreachable = read.unreachable
        var enrolling = read.enrolling
        var freshlyRead = Set(read.observations.keys).union(read.unreachable.keys)
        if let earlier {
            for node in reused {
                if let observation = earlier.observations[node] { observations[node] = observation }
                if let reason = earlier.unreachable[node] { unreachable[node] = reason }
            }
            freshlyRead.formUnion(reused)
        }
        observations.merge(cached) { fresh, _ in fresh }
        func planningInput() -> PlanningInput {
            PlanningInput(
                intent: intent, channels: records, observations: observations, unreachable: unreachable,
                waitingForEnrollment: enrolling, knownNodes: kernels.knownNodes, rekeyRequests: rekeyRequests,
                reqid: reqid, defaultDrain: defaultDrain, now: now)
        }
        var input = planningInput()
        for sa in try await store.unaccountedSAs() {
            input.unaccountedSAsFreedAt[SAIdentifier(destination: sa.destination, spi: sa.spi)] = sa.freedAt
        }
        var plan = planner.plan(input)
        if !cached.isEmpty, readsAfreshBeforeActing {
            // The cache decides whether there is work; acting needs fresh facts.
            var peers: [String: Set<String>]?
            while plan.writesOrSends {
                if peers == nil { peers = Self.peers(intent: intent, records: records) }
                var needed = plan.nodesActedOn(peers: peers ?? [:])
                if !plan.freedUnaccountedSAs.isEmpty || !plan.forgottenUnaccountedSAs.isEmpty {
                    // Which node holds an unaccounted SA is not kept: read every node.
                    needed = nodes
                }
                let stale = needed.intersection(cached.keys).subtracting(freshlyRead)
                if stale.isEmpty { break }
                let again = await observeAdopting(stale)
                for node in stale { observations[node] = nil }
                observations.merge(again.observations) { _, fresh in fresh }
                unreachable.merge(again.unreachable) { _, fresh in fresh }
                enrolling.formUnion(again.enrolling)
                freshlyRead.formUnion(stale)
                let freedAt = input.unaccountedSAsFreedAt
                input = planningInput()
                input.unaccountedSAsFreedAt = freedAt
                plan = planner.plan(input)
            }
        }

        var issued: [(channel: ChannelID, spi: SPI, reason: GenerationNeed.Reason)] = []
        // The records move into the pass's input for the rest of the pass, so that issued
        // generations and updates are written into them in place, not into a copy of them all
        // (the caller's `records` shared their storage: a million records copied per pass at
        // fleet scale). They come back on every exit, a thrown error's included.
        records = [:]
        do {
            if !plan.generationRequests.isEmpty {
                let needs = plan.generationRequests
                let generations = try await store.issueGenerations(needs.map(\.request), now: now)
                for (need, generation) in zip(needs, generations) {
                    input.channels[
                        need.channel,
                        default: ChannelRecord(id: need.channel, step: .new, stepChangedAt: now, generations: [])
                    ]
                    .generations.append(generation)
                    issued.append((need.channel, generation.spi, need.reason))
                    logger.info(
                        "issued generation",
                        metadata: [
                            "channel": "\(need.channel)", "generation": "\(generation.number)",
                            "sa.spi": "\(generation.spi.hex)", "reason": "\(need.reason.rawValue)",
                        ])
                }
                plan = planner.plan(input)
            }

            if !plan.recordUpdates.isEmpty { try await store.update(Array(plan.recordUpdates.values)) }
            if !plan.removedChannels.isEmpty { try await store.removeChannels(Array(plan.removedChannels)) }
        } catch {
            records = input.channels
            throw error
        }
        records = input.channels
        input.channels = [:]
        for (id, record) in plan.recordUpdates { records[id] = record }
        for id in plan.removedChannels { records[id] = nil }
        try await store.recordUnaccountedSAs(
            freed: plan.freedUnaccountedSAs.map {
                UnaccountedSA(destination: $0.destination, spi: $0.spi, freedAt: now)
            },
            forgotten: plan.forgottenUnaccountedSAs.map { ($0.destination, $0.spi) })
        for id in plan.drainsCutShort {
            logger.notice(
                "deleting an inbound SA whose packet counter is still moving: its drain reached its bound",
                metadata: ["sa.destination": "\(id.destination)", "sa.spi": "\(id.spi.hex)"])
        }

        return PreparedPass(
            number: number, startedAt: now, observations: observations, unreachable: unreachable, issued: issued,
            plan: plan, freshlyRead: freshlyRead)
    }

    /// The second half of a pass: send each node its operations (nodes in parallel), journal
    /// every answer, and persist the simulated fleet where there is one.
    public func execute(_ prepared: PreparedPass, revision: Int64? = nil) async throws -> PassReport {
        let results: [(planned: PlannedOperation, outcome: OperationOutcome)]
        do {
            results = try await send(
                prepared.plan, plannedAt: prepared.startedAt, revision: revision, freshlyRead: prepared.freshlyRead)
        } catch {
            // The kernels keep what they were told even when the Store could not record the
            // answers (a lost database): the simulated fleet does too.
            try? kernels.persist()
            throw error
        }
        try kernels.persist()
        return PassReport(
            number: prepared.number, startedAt: prepared.startedAt, observed: prepared.observations.keys.sorted(),
            unreachable: prepared.unreachable, results: results, issued: prepared.issued, plan: prepared.plan,
            observations: prepared.observations, freshlyRead: prepared.freshlyRead)
    }

    /// Journals every operation as planned, confirms the fence, sends each node its batch
    /// (nodes in parallel), and journals every answer. The fence is confirmed again right before
    /// each node's batch (`FenceConfirmations`): a node whose batch could outlive the lease so
    /// confirmed, or whose confirmation failed, gets none. A journal that refuses either record
    /// fails the run.
    private func send(
        _ plan: PassPlan, plannedAt: Date, revision: Int64?, freshlyRead: Set<String>
    ) async throws
        -> [(planned: PlannedOperation, outcome: OperationOutcome)]
    {
        // Nothing is sent on cached facts: `preparePass` read every node it plans for afresh, so
        // this keeps nothing back unless that rule is broken, and then it says so.
        let batches =
            readsAfreshBeforeActing ? plan.operations.filter { freshlyRead.contains($0.key) } : plan.operations
        let unread = Set(plan.operations.keys).subtracting(freshlyRead)
        if !unread.isEmpty {
            logger.critical(
                "not sending a plan made on cached facts",
                metadata: ["nodes": "\(unread.sorted().joined(separator: ","))"])
        }
        guard !batches.isEmpty else { return [] }
        let nodes = batches.keys.sorted()

        // What may reach a kernel is on record before anything is sent.
        var planned: [JournalEntry] = []
        for node in nodes where journalsOperations {
            for operation in batches[node] ?? [] {
                planned.append(
                    JournalEntry(
                        node: node, operation: operation.operation.kind, target: operation.operation.target,
                        channel: operation.channel, plannedAt: plannedAt, result: .planned, revision: revision))
            }
        }
        let journaled: [JournalEntry]
        do {
            journaled = journalsOperations ? try await store.appendJournal(planned) : []
        } catch {
            throw ReconcileError.journalRefused("\(error)")
        }

        let confirmations = FenceConfirmations(fence: fence, clock: clock)
        let validUntil: Date
        do {
            validUntil = try await confirmations.confirm()
        } catch {
            throw ReconcileError.leaseLost("\(error)")
        }
        guard clock.now() < validUntil.addingTimeInterval(-Self.kernelCallBound) else {
            throw ReconcileError.leaseLost(
                "the lease expires at \(validUntil), too soon to send a batch that may take "
                    + "\(Int(Self.kernelCallBound)) s")
        }

        // At most `observeLimit` batches are in flight, as observations are: each batch's
        // deadline starts when it is sent, so a pass over thousands of nodes never has batches
        // waiting behind each other's answers while their own deadlines run.
        let answered = await withTaskGroup(of: (String, [OperationOutcome]).self) { group in
            var waiting = nodes.makeIterator()
            func start(_ node: String) {
                let operations = batches[node] ?? []
                group.addTask { [kernels, logger, clock, batchDeadline, cache] in
                    for operation in operations {
                        logger.debug("planned", metadata: ["node": "\(node)", "operation": "\(operation.operation)"])
                    }
                    let confirmed: Date
                    do {
                        confirmed = try await confirmations.confirm()
                    } catch {
                        let reason = "the lease could not be renewed right before it: \(error)"
                        return (node, operations.map { _ in .notAttempted(reason: reason) })
                    }
                    guard clock.now() < confirmed.addingTimeInterval(-Self.kernelCallBound) else {
                        return (node, operations.map { _ in .notAttempted(reason: "the lease could expire before it") })
                    }
                    return (
                        node,
                        await Self.apply(
                            operations.map(\.operation), to: node, kernels: kernels, clock: clock,
                            timeout: batchDeadline, cache: cache)
                    )
                }
            }
            for _ in 0..<observeLimit {
                guard let node = waiting.next() else { break }
                start(node)
            }
            var outcomes: [String: [OperationOutcome]] = [:]
            while let (node, results) = await group.next() {
                outcomes[node] = results
                if let next = waiting.next() { start(next) }
            }
            return outcomes
        }

        var results: [(planned: PlannedOperation, outcome: OperationOutcome)] = []
        results.reserveCapacity(batches.values.reduce(0) { $0 + $1.count })
        var completed: [JournalEntry] = []
        completed.reserveCapacity(journaled.count)
        var entries = journaled.makeIterator()
        let appliedAt = clock.now()
        for node in nodes {
            let operations = batches[node] ?? []
            let outcomes = answered[node] ?? []
            for (position, planned) in operations.enumerated() {
                let outcome =
                    position < outcomes.count
                    ? outcomes[position] : .notAttempted(reason: "the kernel gave no answer for it")
                results.append((planned, outcome))
                if var entry = entries.next() {
                    entry.appliedAt = outcome.isApplied ? appliedAt : nil
                    entry.result = JournalResult(outcome)
                    completed.append(entry)
                }
                if outcome.isApplied {
                    logger.info("applied", metadata: ["node": "\(node)", "operation": "\(planned.operation)"])
                } else {
                    logger.warning(
                        "kernel refused",
                        metadata: [
                            "node": "\(node)", "operation": "\(planned.operation)",
                            "outcome": "\(outcome)",
                        ])
                }
            }
        }
        do {
            if journalsOperations { try await store.completeJournal(completed) }
        } catch {
            throw ReconcileError.journalRefused("\(error)")
        }
        return results
    }

    /// Sends one node its batch (connecting it first when needed) under a deadline of `timeout`
    /// on `clock`, and answers one outcome per operation, in order. A batch whose answer had not
    /// come by its deadline may have been applied in whole or in part: every operation of it is
    /// `.indeterminate`, as the agent's transport reports a lost reply, and the next
    /// observation decides; so is a batch in flight when the pass is cancelled. The late call is
    /// not cancelled: it ends by its transport's bound, so that a batch held up (a stalled
    /// process) leaves whole and is applied or refused by the kernel (the agent's epoch fence),
    /// never cut off at an unknown point. A kernel that throws says that nothing was sent:
    /// every operation is `.notAttempted`, late or not.
    private static func apply(
        _ operations: [KernelOperation], to node: String, kernels: any FleetKernels, clock: any ReconcilerClock,
        timeout: Duration, cache: (any ObservationCache)?
    ) async -> [OperationOutcome] {
        cache?.sending(to: node)
        do {
            let batch = try await DeadlineRace.run(clock: clock, timeout: timeout, cancellingLateCall: false) {
                deadline in
                try await kernels.kernel(for: node).applyReportingPosition(operations, deadline: deadline)
            }
            cache?.applied(to: node, at: batch.position)
            return batch.results.map(\.outcome)
        } catch let late as DeadlineRace.DeadlinePassed {
            cache?.applied(to: node, at: nil)
            if let thrown = late.underlying { return operations.map { _ in .notAttempted(reason: "\(thrown)") } }
            let reason =
                "node \(node) did not answer before its deadline of \(timeout.secondsText) for one batch; "
                + "the next observation decides"
            return operations.map { _ in .indeterminate(reason: reason) }
        } catch is CancellationError where Task.isCancelled {
            // The pass was cancelled with the batch in flight: it may have been sent.
            cache?.applied(to: node, at: nil)
            let reason = "the pass was cancelled before node \(node) answered its batch; the next observation decides"
            return operations.map { _ in .indeterminate(reason: reason) }
        } catch {
            cache?.applied(to: node, at: nil)
            return operations.map { _ in .notAttempted(reason: "\(error)") }
        }
    }

    /// Runs passes until the fleet converges, only drain waits remain (`waitForDrain` false),
    /// or only blocked channels remain. With `waitForDrain`, sleeps on the clock until the
    /// next drain deadline and goes on. Every pass is measured for the recorder.
    ///
    /// `firstReading`: a reading of the fleet made under the same lease moments before, which
    /// the first pass uses for the nodes it settles instead of reading them again.
    ///
    /// `planningOnCache`: every pass plans on the reconciler's cache where it stands for a node,
    /// and reads afresh only what its plan touches (`preparePass`).
    public func converge(
        intent: FleetIntent, waitForDrain: Bool, rekeyRequests: [ChannelID: Date] = [:],
        defaultDrain: Duration = .seconds(5), revision: Int64? = nil, firstReading: FleetObservation? = nil,
        planningOnCache: Bool = false,
        onPass: (PassReport) async throws -> Void = { _ in }
    ) async throws -> ConvergeReport {
        var records = try await store.loadChannels()
        var passes: [PassReport] = []
        var failingPasses = 0
        while passes.count < Self.passLimit {
            // Kept only for a recorder that measures passes: a second reference to the records
            // would make the pass copy them all to change them.
            let before = recorder.measuresPasses ? records : [:]
            let report = try await runPass(
                number: passes.count + 1, intent: intent, records: &records, rekeyRequests: rekeyRequests,
                defaultDrain: defaultDrain, revision: revision, reusing: passes.isEmpty ? firstReading : nil,
                planningOnCache: planningOnCache)
            if recorder.measuresPasses {
                recorder.record(
                    pass: PassMeasurement(
                        report: report, before: before, after: records, intent: intent, now: clock.now()))
            }
            try await onPass(report)
            // Only the last pass keeps its observations, its record updates and its planned
            // operations (every pass's `results` lists what it sent): a long run must not hold
            // every one (a pass from empty updates a million records and plans two million
            // operations).
            if !passes.isEmpty {
                passes[passes.count - 1].observations = [:]
                passes[passes.count - 1].plan.recordUpdates = [:]
                passes[passes.count - 1].plan.operations = [:]
            }
            passes.append(report)
            if !report.failures.isEmpty {
                failingPasses += 1
                if failingPasses >= Self.failingPassLimit {
                    throw ReconcileError.operationsFailed(report.failures.map { "\($0.planned): \($0.outcome)" })
                }
                // Back off before retrying what the kernels refused: 0.2 s, 0.4 s, 0.8 s ...
                let backoff = 0.2 * Double(1 << min(failingPasses - 1, 5))
                try await clock.sleep(until: clock.now().addingTimeInterval(backoff))
                continue
            }
            failingPasses = 0
            if report.plan.hasWork || report.madeProgress { continue }
            if let deadline = report.plan.nextDeadline {
                if waitForDrain {
                    try await clock.sleep(until: deadline)
                    continue
                }
                return ConvergeReport(outcome: .waitingForDrain(until: deadline), passes: passes)
            }
            if report.plan.blocked.isEmpty, report.plan.heldCount > 0 {
                throw ReconcileError.stalled(
                    held: report.plan.held.map(\.description), count: report.plan.heldCount)
            }
            return ConvergeReport(outcome: report.plan.blocked.isEmpty ? .converged : .blocked, passes: passes)
        }
        let remaining = passes.last.map { $0.plan.operations.values.flatMap { $0.map(\.description) } } ?? []
        throw ReconcileError.didNotConverge(passes: passes.count, remaining: remaining)
    }
}
