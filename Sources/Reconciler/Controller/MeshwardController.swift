import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import Store

/// What the commands do, with the modules wired together: load the spec, open the Store under
/// its lease, reach the nodes, run passes, and report. The command-line tool only parses
/// arguments and prints what this returns.
public final class MeshwardController: Sendable {
    /// The state directory (Store, master key, simulated fleet).
    public let stateDirectory: String
    /// Where the Store lives: the state directory, or a PostgreSQL server.
    public let storeLocation: StoreLocation
    private let masterKeyPath: String?
    private let logger: Logger
    private let clock: any ReconcilerClock

    public init(
        stateDirectory: String, store: StoreLocation = .stateDirectory, masterKeyPath: String? = nil,
        logger: Logger, clock: any ReconcilerClock = SystemClock()
    ) {
        self.stateDirectory = stateDirectory
        self.storeLocation = store
        self.masterKeyPath = masterKeyPath
        self.logger = logger
        self.clock = clock
    }

    // MARK: - Spec

    /// Loads and validates the spec; throws `ControllerError.invalidSpec` with every diagnostic
    /// when it has errors. Warnings come back with the intent.
    public static func loadSpec(_ paths: [String]) throws -> (intent: FleetIntent, warnings: [Diagnostic]) {
        let result = SpecLoader().load(paths: paths)
        guard let intent = result.intent else { throw ControllerError.invalidSpec(result.diagnostics) }
        return (intent, result.diagnostics)
    }

    // MARK: - Files

    /// The simulated fleet's file in the state directory.
    public var simulatedFleetURL: URL {
        URL(fileURLWithPath: stateDirectory).appendingPathComponent("simulated-fleet.json")
    }

    /// Whether the state directory holds a Store. Throws `permissionDenied` (naming the path)
    /// when the directory or the database exists but this user may not read it, so that a
    /// state directory this user cannot see into is never taken for an empty one.
    /// A Store on a database server always exists once migrated (opening it says when not).
    private func hasState() throws -> Bool {
        guard storeLocation == .stateDirectory else { return true }
        return try StateAccess.storeExists(in: stateDirectory)
    }

    /// Opens the Store where `storeLocation` says (`StoreLocation.open`, the one place that
    /// names a conformer); everything else speaks to the Store's roles.
    private func openStore() async throws -> any ControllerStore {
        try await storeLocation.open(stateDirectory: stateDirectory, masterKeyPath: masterKeyPath, logger: logger)
    }

    private var leaseHolder: String {
        "\(ProcessInfo.processInfo.hostName) pid \(ProcessInfo.processInfo.processIdentifier)"
    }

    /// Acquires the lease; a live lease whose holder is a controller on this host that has
    /// exited (killed, crashed) is taken over at once instead of waiting out its TTL.
    private func acquireLease(_ store: any LeaseStore, holder: String, ttl: Duration) async throws {
        do {
            try await store.acquireLease(holder: holder, ttl: ttl, now: clock.now())
        } catch StoreError.leaseHeld(let current, _) where Self.isExitedLocalController(current) {
            try await store.takeOverLease(from: current, holder: holder, ttl: ttl, now: clock.now())
        }
    }

    /// Whether `holder` names a controller process on this host (`HOST pid N`, as `leaseHolder`
    /// writes it) that no longer exists. Another host's holder, or a process that still exists
    /// (even an unrelated one that reused the pid), is never judged exited.
    static func isExitedLocalController(_ holder: String) -> Bool {
        let prefix = "\(ProcessInfo.processInfo.hostName) pid "
        guard holder.hasPrefix(prefix), let pid = Int32(holder.dropFirst(prefix.count)), pid > 0,
            pid != getpid()
        else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    private func leaseTTL(_ intent: FleetIntent) -> Duration {
        let longestDrain = intent.channels.map(\.drain).max() ?? .seconds(5)
        return max(.seconds(60), longestDrain * 3)
    }

    // MARK: - Apply

    /// Applies the spec: passes until the fleet converges, only drain waits remain (when
    /// `waitForDrain` is false), or only channels blocked by unreachable nodes remain.
    ///
    /// - Parameters:
    ///   - source: where the spec came from, for the history.
    ///   - rekey: channels to rotate now, on top of whatever is due.
    ///   - onPass: called after each pass, for progress.
    ///   - force: proceed although the Store is empty while kernels hold Meshward's objects
    ///     (the lost-Store recovery), or although the spec removes more than half of the Store's
    ///     channels; without it those are refused with `lostStore` and `massRemoval`. A spec of
    ///     another cluster (`clusterMismatch`) is refused even with it.
    ///   - command: what made the run, for the history (`apply`, `reconcile`); a `rekey` run
    ///     records its selector, a targeted run its target.
    ///   - target: limit the run to one node's channels or one `FROM:TO` (`apply --target`):
    ///     every other channel, and every kernel object between other address pairs (stale
    ///     ones included), is left exactly as it is, and the recorded revision does not change.
    ///   - expected: a plan made earlier (`plan --out`, or the one shown at the confirmation
    ///     prompt). Once the lease is held the plan is made again; when the Store, the kernels
    ///     or the changes differ, nothing is done and `stalePlan` is thrown.
    ///   - planFile: the saved plan's path, for that message; nil for the plan shown at the prompt.
    public func apply(
        _ intent: FleetIntent, source: String, waitForDrain: Bool, rekey: RekeySelection? = nil,
        force: Bool = false, command: String = "apply", target: ApplyTarget? = nil,
        expected: PlanDocument? = nil, planFile: String? = nil,
        onPass: @escaping @Sendable (PassReport) async -> Void = { _ in }
    ) async throws -> ApplyDocument {
        let store = try await openStore()
        try Self.refuseOtherCluster(
            intent, recorded: try await ControllerSettings.load(from: store)?.cluster, directory: stateDirectory)
        if !force {
            try await refuseLostStore(intent, store: store)
            let records = try await store.loadChannels()
            let scope = try target.map { try FleetScope(target: $0, intent: intent, records: records) }
            try Self.refuseMassRemoval(
                scope?.intent ?? intent, records: scope?.records ?? records, held: records.count,
                directory: stateDirectory)
        }
        var command = rekey.map { "rekey \($0.commandLine)" } ?? command
        if let target { command += " --target \(target.argument)" }
        let holder = leaseHolder
        let ttl = leaseTTL(intent)
        try await acquireLease(store, holder: holder, ttl: ttl)
        do {
            if let expected {
                let now = try await plan(intent, target: target)
                let reasons = PlanComparison.differences(saved: expected, now: now)
                if !reasons.isEmpty { throw ControllerError.stalePlan(file: planFile, reasons: reasons) }
            }
            let document = try await applyHoldingLease(
                intent, store: store, source: source, command: command, waitForDrain: waitForDrain, rekey: rekey,
                target: target, renew: { try await store.renewLease(holder: holder, ttl: ttl, now: $0) },
                onPass: onPass)
            try await store.releaseLease(holder: holder)
            return document
        } catch {
            try? await store.releaseLease(holder: holder)
            throw error
        }
    }

    private func applyHoldingLease(
        _ intent: FleetIntent, store: any ControllerStore, source: String, command: String, waitForDrain: Bool,
        rekey: RekeySelection?, target: ApplyTarget?,
        renew: @escaping @Sendable (Date) async throws -> Lease,
        onPass: @escaping @Sendable (PassReport) async -> Void
    ) async throws -> ApplyDocument {
        let previous = try await ControllerSettings.load(from: store)
        let records = try await store.loadChannels()
        let scope = try target.map { try FleetScope(target: $0, intent: intent, records: records) }
        var rekeyRequests = previous?.rekeyRequests ?? [:]
        if let rekey {
            let now = clock.now()
            for id in try rekey.channels(in: intent) { rekeyRequests[id.description] = now }
        }
        let endpoints = nodeEndpoints(for: intent, remembered: previous?.endpoints ?? [:], records: records)
        // A targeted run leaves the rest of the fleet on the old revision: it records none.
        let revision = scope == nil ? intent.revision : (previous?.revision ?? intent.revision)
        var settings = ControllerSettings(
            cluster: intent.cluster, reqid: intent.reqid, revision: revision,
            rekeyEverySeconds: intent.channels.first?.rekey.every.timeInterval ?? previous?.rekeyEverySeconds ?? 86_400,
            rekeyPackets: intent.channels.first?.rekey.packets,
            drainSeconds: intent.channels.first?.drain.timeInterval ?? previous?.drainSeconds ?? 5,
            endpoints: endpoints.mapValues(\.description), rekeyRequests: rekeyRequests)
        try await settings.save(to: store)

        let simulated = try loadSimulatedFleet(intent: intent)
        SimulatedCrashFault.install(on: simulated, savingTo: simulatedFleetURL)
        let kernels = EndpointKernels(
            endpoints: endpoints, simulated: simulated, simulatedFile: simulatedFleetURL,
            reqid: Reqid(intent.reqid), logger: logger)
        let reconciler = FleetReconciler(
            store: scope.map { ScopedGenerationStore(store, scope: $0) } ?? store,
            kernels: scope.map { ScopedKernels(kernels, scope: $0) } ?? kernels, reqid: Reqid(intent.reqid),
            clock: clock, logger: logger, fence: LeaseWriteFence(renew: renew))
        let clock = self.clock
        let runIntent = scope?.intent ?? intent
        let report = try await reconciler.converge(
            intent: runIntent, waitForDrain: waitForDrain, rekeyRequests: requests(rekeyRequests, in: runIntent),
            defaultDrain: .seconds(settings.drainSeconds),
            onPass: { pass in
                _ = try await renew(clock.now())
                await onPass(pass)
            })

        // Forget endpoints of nodes that have nothing left, and requests that were honoured.
        let remaining = try await store.loadChannels()
        settings.endpoints = nodeEndpoints(for: intent, remembered: settings.endpoints, records: remaining)
            .mapValues(\.description)
        settings.rekeyRequests = rekeyRequests.filter { key, requested in
            guard let record = remaining.values.first(where: { $0.id.description == key }) else { return false }
            return !record.generations.contains { $0.state == .active && $0.createdAt >= requested }
        }
        try await settings.save(to: store)

        let document = applyDocument(intent, report: report)
        let latest = try await store.revisions(limit: 1).first
        if latest?.hash != intent.revision || document.operations > 0 {
            _ = try await store.recordRevision(
                hash: intent.revision, source: source, summary: summary(of: report), at: clock.now(),
                command: command)
        }
        return document
    }

    /// Nodes of the spec, plus remembered nodes that still have channels in the Store.
    private func nodeEndpoints(
        for intent: FleetIntent, remembered: [String: String],
        records: [ChannelID: ChannelRecord]
    ) -> [String: NodeEndpoint] {
        var result: [String: NodeEndpoint] = [:]
        let involved = Set(records.keys.flatMap { [$0.from, $0.to] })
        for (node, text) in remembered where involved.contains(node) {
            if let endpoint = NodeEndpoint(text) { result[node] = endpoint }
        }
        for node in intent.nodes { result[node.name] = node.endpoint }
        return result
    }

    private func requests(_ requests: [String: Date], in intent: FleetIntent) -> [ChannelID: Date] {
        var result: [ChannelID: Date] = [:]
        for channel in intent.channels {
            if let requested = requests[channel.id.description] { result[channel.id] = requested }
        }
        return result
    }

    /// The simulated fleet from the state directory, with every `sim` node of the spec in it
    /// (a node that joins the spec is a machine that exists, with an empty kernel).
    private func loadSimulatedFleet(intent: FleetIntent) throws -> SimulatedFleet {
        let fleet = try SimulatedFleet.load(from: simulatedFleetURL)
        fleet.withState { state in
            for node in intent.nodes where node.endpoint == .sim {
                state.addNode(node.name, addresses: node.addresses)
            }
        }
        return fleet
    }

    private func applyDocument(_ intent: FleetIntent, report: ConvergeReport) -> ApplyDocument {
        let outcome: ApplyOutcome
        var waitingUntil: Date?
        switch report.outcome {
        case .converged: outcome = .converged
        case .waitingForDrain(let until):
            outcome = .waitingForDrain
            waitingUntil = until
        case .blocked: outcome = .blocked
        }
        let failures = report.passes.flatMap(\.failures).map {
            ApplyDocument.Failure(
                node: $0.planned.node, operation: $0.planned.operation.kind, target: $0.planned.operation.target,
                error: "\($0.outcome)")
        }
        let issued = report.passes.flatMap(\.issued).map {
            ApplyDocument.Issued(channel: $0.channel.description, spi: $0.spi.hex, reason: $0.reason.rawValue)
        }
        let unreachable = (report.last?.unreachable ?? [:]).sorted { $0.key < $1.key }
            .map { NodeProblem(node: $0.key, reason: $0.value) }
        return ApplyDocument(
            cluster: intent.cluster, revision: intent.revision, outcome: outcome, passes: report.passes.count,
            operations: report.passes.reduce(0) { $0 + $1.results.filter { $0.outcome.isApplied }.count },
            failures: failures, generationsIssued: issued, unreachable: unreachable, waitingUntil: waitingUntil)
    }

    private func summary(of report: ConvergeReport) -> String {
        let issued = report.passes.flatMap(\.issued)
        let created = issued.filter { $0.reason == .new }.count
        let removed = report.passes.reduce(0) { $0 + $1.plan.removedChannels.count }
        let applied = report.passes.reduce(0) { $0 + $1.results.filter { $0.outcome.isApplied }.count }
        return "\(created) channels created, \(issued.count - created) rekeyed, \(removed) removed; "
            + "\(applied) kernel operations"
    }

    // MARK: - Plan

    /// What `apply` would do, stage by stage, without writing anything: the passes run against
    /// a copy of every node's kernel and of the Store, with the clock jumping over drains.
    ///
    /// With `target`, only the target's channels are planned (what `apply --target` would do);
    /// the document's `target` says so, and a changed revision alone is no change (a targeted
    /// run does not record it).
    public func plan(_ spec: FleetIntent, target: ApplyTarget? = nil) async throws -> PlanDocument {
        let store = try hasState() ? try await openStore() : nil
        let allRecords = try await store?.loadChannels() ?? [:]
        let settings: ControllerSettings? = if let store { try await ControllerSettings.load(from: store) } else { nil }
        try Self.refuseOtherCluster(spec, recorded: settings?.cluster, directory: stateDirectory)
        let scope = try target.map { try FleetScope(target: $0, intent: spec, records: allRecords) }
        let intent = scope?.intent ?? spec
        let records = scope?.records ?? allRecords
        let endpoints = nodeEndpoints(for: spec, remembered: settings?.endpoints ?? [:], records: allRecords)
        let rekeyRequests = requests(settings?.rekeyRequests ?? [:], in: intent)

        // Read every node as it is now.
        let everything = EndpointKernels(
            endpoints: endpoints, simulated: try loadSimulatedFleet(intent: spec), simulatedFile: nil,
            reqid: Reqid(intent.reqid), logger: logger)
        let live: any FleetKernels = scope.map { ScopedKernels(everything, scope: $0) } ?? everything
        let reader = FleetReconciler(
            store: ScratchGenerationStore(channels: records), kernels: live, reqid: Reqid(intent.reqid), clock: clock,
            logger: logger)
        let (observations, unreachable) = await reader.observe(Set(endpoints.keys))

        // Copy them into a scratch fleet and run the passes there.
        var scratch = SimulatedFleetState()
        let addresses = nodeAddresses(intent: intent, records: records)
        for node in endpoints.keys.sorted() {
            scratch.addNode(node, addresses: addresses[node] ?? [])
            for sa in observations[node]?.securityAssociations ?? [] { _ = scratch.apply(.addSA(sa), on: node) }
            for policy in observations[node]?.policies ?? [] { _ = scratch.apply(.addPolicy(policy), on: node) }
            if unreachable[node] != nil { scratch.setReachable(node, false) }
        }
        let scratchFleet = SimulatedFleet(state: scratch)
        let scratchStore = ScratchGenerationStore(channels: records)
        let scratchKernels = EndpointKernels(
            endpoints: endpoints.mapValues { _ in .sim }, simulated: scratchFleet, simulatedFile: nil,
            reqid: Reqid(intent.reqid),
            logger: Logger(label: "meshward.plan", factory: { _ in SwiftLogNoOpLogHandler() }))
        let planClock = ManualClock(clock.now())
        let rehearsal = FleetReconciler(
            store: scratchStore, kernels: scratchKernels, reqid: Reqid(intent.reqid), clock: planClock,
            logger: Logger(label: "meshward.plan", factory: { _ in SwiftLogNoOpLogHandler() }))
        let report = try await rehearsal.converge(
            intent: intent, waitForDrain: true, rekeyRequests: rekeyRequests,
            defaultDrain: .seconds(settings?.drainSeconds ?? 5))

        let placeholders = scratchStore.placeholderSPIs
        var stages: [PlanDocument.Stage] = []
        var previousStart: Date?
        var previousDeadline: Date?
        for pass in report.passes {
            defer {
                previousStart = pass.startedAt
                previousDeadline = pass.plan.nextDeadline
            }
            guard !pass.results.isEmpty else { continue }
            let waited = previousDeadline != nil && previousStart.map { pass.startedAt > $0 } == true
            stages.append(
                PlanDocument.Stage(
                    stage: stages.count + 1, waitsUntil: waited ? pass.startedAt : nil,
                    operations: pass.results.map { result in
                        PlanDocument.Operation(
                            node: result.planned.node, operation: result.planned.operation.kind,
                            target: Self.label(result.planned.operation, placeholders: placeholders),
                            channel: result.planned.channel?.description)
                    }))
        }
        let issued = report.passes.flatMap(\.issued)
        let created = issued.filter { $0.reason == .new }.count
        let removedChannels = Set(records.keys).subtracting(intent.channels.map(\.id))
        let operations = stages.reduce(0) { $0 + $1.operations.count }
        // Channels whose kernel objects change without a new generation (traffic added to a
        // flow, enforcement changed): every channel with operations that is neither issued a
        // generation nor removed.
        let touched = Set(report.passes.flatMap { $0.results.compactMap(\.planned.channel) })
        let updated = touched.subtracting(issued.map(\.channel)).subtracting(removedChannels)
        let settingChanges = settings.map { PlanSettingChange.changes(from: $0, to: spec) } ?? []
        let revisionChanged = settings?.revision != spec.revision
        var warnings: [String] = []
        if records.isEmpty {
            let owned = Self.ownedObjects(observations)
            if !owned.isEmpty {
                warnings.append(ControllerError.lostStore(directory: stateDirectory, owned: owned).description)
            }
        }
        let removal = RemovalCount(
            held: allRecords.count, removed: RemovalCount(intent: intent, records: records).removed)
        if removal.isMassRemoval {
            warnings.append(
                "this plan removes \(removal.removed) of the \(removal.held) channels the Store holds (more than "
                    + "half): apply refuses it without --force")
        }
        return PlanDocument(
            cluster: spec.cluster, revision: spec.revision,
            changes: operations > 0 || !issued.isEmpty || (revisionChanged && target == nil),
            summary: .init(
                channelsCreated: created, channelsRekeyed: issued.count - created, channelsUpdated: updated.count,
                channelsRemoved: removedChannels.count, operations: operations),
            generations: issued.map { .init(channel: $0.channel.description, reason: $0.reason.rawValue) },
            stages: stages,
            unreachable: unreachable.sorted { $0.key < $1.key }.map { NodeProblem(node: $0.key, reason: $0.value) },
            previousRevision: settings?.revision, revisionChanged: revisionChanged,
            settingsChanged: settingChanges, updatedChannels: updated.sorted().map(\.description),
            channelChanges: PlanChannelChange.changes(
                intent: intent, records: records, observations: observations, issued: issued, updated: updated,
                removed: removedChannels),
            warnings: warnings, target: target?.argument,
            stateFingerprint: StateFingerprint.store(records: allRecords, revision: settings?.revision),
            fleetFingerprint: StateFingerprint.fleet(observations: observations, unreachable: unreachable))
    }

    /// The target of `operation` with a placeholder generation's SPI shown as `new-N` (the real
    /// SPI is chosen by `apply`). One dictionary lookup on the operation's own SPI, so labelling
    /// a plan costs time linear in its operations, whatever the number of placeholders.
    static func label(_ operation: KernelOperation, placeholders: [SPI: Int]) -> String {
        let target = operation.target
        guard let spi = operation.spi, let ordinal = placeholders[spi] else { return target }
        return target.replacingOccurrences(of: spi.hex, with: "new-\(ordinal)")
    }

    private func nodeAddresses(intent: FleetIntent, records: [ChannelID: ChannelRecord]) -> [String: [IPAddress]] {
        var result: [String: Set<IPAddress>] = [:]
        for record in records.values {
            for generation in record.generations {
                result[record.id.from, default: []].insert(generation.source)
                result[record.id.to, default: []].insert(generation.destination)
            }
        }
        for node in intent.nodes { result[node.name] = Set(node.addresses) }
        return result.mapValues { $0.sorted() }
    }

    // MARK: - Status and history

    /// Per node and per channel, as the kernels and the Store show them now. Needs no spec:
    /// what it knows of the fleet comes from the last `apply`.
    ///
    /// `channelFilter` narrows the channel list (`--step`, `--drift`, `--channel`); the summary
    /// always counts every channel read.
    public func status(
        node filter: String? = nil, channels channelFilter: StatusFilter = StatusFilter()
    )
        async throws -> StatusDocument
    {
        guard try hasState() else { throw ControllerError.noState(directory: stateDirectory) }
        let store = try await openStore()
        let records = try await store.loadChannels()
        let settings = try await ControllerSettings.load(from: store)
        let simulated = try SimulatedFleet.load(from: simulatedFleetURL)
        var endpoints: [String: NodeEndpoint] = [:]
        for (node, text) in settings?.endpoints ?? [:] { endpoints[node] = NodeEndpoint(text) }
        if settings == nil {
            // An empty Store (lost, truncated): look at the simulated kernels it would have
            // known, so that what they still hold is reported rather than hidden.
            for node in simulated.state.nodes.keys { endpoints[node] = .sim }
        }
        // With --node: that node, and every peer of its channels (a channel's drift needs both ends).
        var shown = Set(endpoints.keys)
        if let filter {
            let peers = Set(records.keys.filter { $0.from == filter || $0.to == filter }.flatMap { [$0.from, $0.to] })
            guard endpoints[filter] != nil || !peers.isEmpty else {
                throw ControllerError.unknownNode(filter, known: endpoints.keys.sorted())
            }
            shown = [filter]
            endpoints = endpoints.filter { $0.key == filter || peers.contains($0.key) }
        }
        let reqid = settings.map { Reqid($0.reqid) } ?? .meshwardDefault
        let kernels = EndpointKernels(
            endpoints: endpoints, simulated: simulated, simulatedFile: nil, reqid: reqid, logger: logger)
        let reader = FleetReconciler(
            store: ScratchGenerationStore(channels: records), kernels: kernels, reqid: reqid, clock: clock,
            logger: logger)
        let now = clock.now()
        let (observations, unreachable) = await reader.observe(Set(endpoints.keys))
        var warnings: [String] = []
        if records.isEmpty {
            let owned = Self.ownedObjects(observations)
            if !owned.isEmpty {
                warnings.append(ControllerError.lostStore(directory: stateDirectory, owned: owned).description)
            }
        }

        let nodes = endpoints.keys.filter(shown.contains).sorted().map { name in
            let observation = observations[name]
            return StatusDocument.Node(
                name: name, endpoint: endpoints[name]?.description ?? "unknown", reachable: observation != nil,
                error: unreachable[name], securityAssociations: observation?.securityAssociations.count ?? 0,
                policies: observation?.policies.count ?? 0,
                dropCounters: (observation?.statistics ?? [:]).filter { $0.value > 0 })
        }
        let channels = records.values.sorted { $0.id < $1.id }
            .filter { filter == nil || $0.id.from == filter || $0.id.to == filter }
            .map { record in
                channelStatus(record, observations: observations, settings: settings, now: now)
            }
        return StatusDocument(
            cluster: settings?.cluster, revision: settings?.revision, observedAt: now, nodes: nodes,
            channels: channels.filter(channelFilter.includes), warnings: warnings,
            summary: StatusDocument.Summary(nodes: nodes, channels: channels))
    }

    private func channelStatus(
        _ record: ChannelRecord, observations: [String: NodeObservation],
        settings: ControllerSettings?, now: Date
    ) -> StatusDocument.Channel {
        let active = record.generations.last { $0.state == .active }
        var drift: [String] = []
        for generation in record.generations where generation.state == .active || generation.state == .pending {
            let id = SAIdentifier(destination: generation.destination, spi: generation.spi)
            let nodes = generation.state == .active ? [record.id.from, record.id.to] : [record.id.to]
            for node in nodes {
                guard let observation = observations[node] else {
                    drift.append("node \(node) did not answer")
                    continue
                }
                guard let sa = observation.securityAssociations.first(where: { $0.identifier == id }) else {
                    drift.append("\(node) lacks the SA spi \(generation.spi.hex) of generation \(generation.number)")
                    continue
                }
                if sa.key.fingerprint != generation.key.fingerprint || sa.cipher != generation.cipher {
                    drift.append("\(node) holds another key or cipher under spi \(generation.spi.hex)")
                }
            }
            if generation.state == .active, let observation = observations[record.id.from] {
                let pinned = observation.policies.contains {
                    $0.direction == .outbound && $0.template.spi == generation.spi
                        && $0.selector.destination.address == generation.destination
                }
                if !pinned {
                    drift.append("\(record.id.from) has no outbound policy pinning spi \(generation.spi.hex)")
                }
            }
        }
        let nextRekey = active.map { $0.createdAt.addingTimeInterval(settings?.rekeyEverySeconds ?? 86_400) }
        let rekeyIn = nextRekey.map { Int($0.timeIntervalSince(now).rounded(.down)) }
        func counters(on node: String) -> StatusDocument.SACounterReport? {
            guard let active else { return nil }
            let id = SAIdentifier(destination: active.destination, spi: active.spi)
            guard let sa = observations[node]?.securityAssociations.first(where: { $0.identifier == id }) else {
                return nil
            }
            return StatusDocument.SACounterReport(
                packets: sa.counters.packets, bytes: sa.counters.bytes,
                firstUsed: sa.counters.useTime == 0 ? nil : Date(timeIntervalSince1970: Double(sa.counters.useTime)))
        }
        let draining = record.generations.last { $0.state == .retiring && $0.supersededAt != nil }
        return StatusDocument.Channel(
            channel: record.id.description, from: record.id.from, to: record.id.to, family: record.id.family.rawValue,
            step: record.step.rawValue, generation: active?.number, spi: active?.spi.hex,
            cipher: active?.cipher.rawValue,
            keyAgeSeconds: active.map { Int(now.timeIntervalSince($0.createdAt)) }, nextRekey: nextRekey,
            drift: !drift.isEmpty, driftDetail: drift, rekeyInSeconds: rekeyIn, rekeyOverdue: (rekeyIn ?? 0) < 0,
            outbound: counters(on: record.id.from), inbound: counters(on: record.id.to),
            drainUntil: draining?.supersededAt?.addingTimeInterval(settings?.drainSeconds ?? 5))
    }

    /// Applied revisions, newest first.
    public func history(limit: Int? = nil) async throws -> HistoryDocument {
        guard try hasState() else { throw ControllerError.noState(directory: stateDirectory) }
        let revisions = try await openStore().revisions(limit: limit)
        return HistoryDocument(
            revisions: revisions.map {
                .init(
                    id: $0.id, hash: $0.hash, source: $0.source, appliedAt: $0.appliedAt, summary: $0.summary,
                    command: $0.command)
            })
    }
}
