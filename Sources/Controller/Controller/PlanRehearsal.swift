import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import Reconciler
import Store

/// What `apply` would do, made by rehearsing it: the passes run against a copy of every node's
/// kernel and of the Store, on a clock that jumps over drains (the copy is a simulated fleet,
/// whatever the nodes' endpoints).
struct PlanRehearsal {
    let context: ControllerContext
    /// Whether a plan that reads no kernel leaves out the channels nothing can change (the
    /// default); false rehearses every channel, for the tests that show both give one plan.
    var narrowsUnreadPlans = true

    /// What `apply` would do, stage by stage, without writing anything: the passes run against
    /// a copy of every node's kernel and of the Store, with the clock jumping over drains.
    ///
    /// With `target`, only the target's channels are planned (what `apply --target` would do);
    /// the document's `target` says so, and a changed revision alone is no change (a targeted
    /// run does not record it).
    ///
    /// With `refresh` false, no kernel is read: every node is taken to hold what the Store's
    /// records and the spec the last `apply` recorded say it was given (`RecordedReadings`),
    /// and the document's `kernelsRead` says so.
    func plan(_ spec: FleetIntent, target: ApplyTarget? = nil, refresh: Bool = true) async throws -> PlanDocument {
        try await rehearse(spec, target: target, refresh: refresh).plan
    }

    /// The plan, and the reading of the fleet it was made from: an `apply` that makes its plan
    /// again under the lease gives that reading to its first pass instead of reading the
    /// fleet once more.
    func rehearse(
        _ spec: FleetIntent, target: ApplyTarget? = nil, refresh: Bool = true
    ) async throws -> (plan: PlanDocument, reading: FleetObservation) {
        // The spec's simulated nodes are read from the fleet file while the Store opens and
        // loads (one core each; the Store's load is one thread).
        let simulatedSpecNodes = Set(spec.nodes.filter { $0.endpoint == .sim }.map(\.name))
        let prefetch: Task<[String: Result<NodeObservation, KernelError>]?, any Error>? =
            refresh && target == nil && !simulatedSpecNodes.isEmpty
            ? Task.detached { [url = context.simulatedFleetURL, reqid = Reqid(spec.reqid)] in
                try SimulatedFleet.observations(from: url, of: simulatedSpecNodes, reqid: reqid)
            } : nil
        defer { prefetch?.cancel() }
        let store = try context.hasState() ? try await context.openStore() : nil
        let allRecords = try await store?.loadChannels() ?? [:]
        let settings: ControllerSettings? = if let store { try await ControllerSettings.load(from: store) } else { nil }
        try MeshwardController.refuseOtherCluster(spec, recorded: settings?.cluster, directory: context.stateDirectory)
        let scope = try target.map { try FleetScope(target: $0, intent: spec, records: allRecords) }
        // Nodes whose every certificate is revoked are planned as gone, as apply runs them.
        let revoked = RevokedNodes(try await store?.revokedNodes() ?? [])
        let intent = revoked.intent(scope?.intent ?? spec)
        let records = scope?.records ?? allRecords
        let endpoints = ControllerContext.nodeEndpoints(
            for: spec, remembered: settings?.endpoints ?? [:], records: allRecords
        )
        .filter { !revoked.names.contains($0.key) }
        let rekeyRequests = ControllerContext.requests(settings?.rekeyRequests ?? [:], in: intent)

        let observations: [String: NodeObservation]
        let unreachable: [String: String]
        let enrolling: Set<String>
        // What the rehearsal plans: everything, except that without a reading of the kernels
        // the channels that nothing can change are left out (`RecordedReadings.settled`).
        var rehearsedIntent = intent
        var rehearsedRecords = records
        // How many of the intent's channels the records hold, when the narrowing counted it.
        var recordedCount: Int?
        if refresh {
            (observations, unreachable, enrolling) = try await read(
                endpoints: endpoints, spec: spec, intent: intent, records: records, scope: scope, store: store,
                prefetched: try await prefetch?.value.map { (simulatedSpecNodes, $0) })
        } else {
            let applied: FleetIntent? =
                if let store { try await AppliedSpec.load(from: store, reusing: spec) } else { nil }
            if applied == nil, !records.isEmpty { throw ControllerError.noAppliedSpec }
            if let applied, narrowsUnreadPlans {
                let settled = RecordedReadings.settled(
                    records: records, applied: applied, intent: intent, rekeyRequests: rekeyRequests,
                    now: context.clock.now())
                recordedCount = settled.recorded
                if settled.flags.contains(true) {
                    // The unsettled channels and their records, and every record the spec no
                    // longer names (set apart only when there is one).
                    var channels: [ChannelIntent] = []
                    var kept: [ChannelID: ChannelRecord] = [:]
                    for (channel, isSettled) in zip(intent.channels, settled.flags) where !isSettled {
                        channels.append(channel)
                        kept[channel.id] = records[channel.id]
                    }
                    if settled.recorded < records.count {
                        for id in RemovalCount.unnamed(records, in: intent) { kept[id] = records[id] }
                    }
                    rehearsedIntent = FleetIntent(
                        cluster: intent.cluster, reqid: intent.reqid, nodes: intent.nodes, channels: channels,
                        flowCount: intent.flowCount, certificateLifetime: intent.certificateLifetime)
                    rehearsedRecords = kept
                }
            }
            observations = RecordedReadings.readings(
                records: rehearsedRecords, applied: applied, nodes: endpoints.keys)
            (unreachable, enrolling) = ([:], [])
        }

        // The fingerprints of what was read, for `plan --out`, made while the rehearsal runs (they
        // depend on the readings and the records alone; a plan that read no kernel has none).
        let fingerprints: Task<(store: String, fleet: String), Never>? =
            refresh
            ? Task.detached { [allRecords, revision = settings?.revision, observations, unreachable] in
                (
                    StateFingerprint.store(records: allRecords, revision: revision),
                    StateFingerprint.fleet(observations: observations, unreachable: unreachable)
                )
            } : nil
        defer { fingerprints?.cancel() }
        // The Store's channels the spec no longer names.
        let removedChannels = RemovalCount.unnamed(records, in: intent, recorded: recordedCount)

        // Rehearse on the readings, copying a node's kernel only when an operation reaches it.
        // A node neither read nor unreachable (one still enrolling) is rehearsed as an empty kernel.
        var readings = observations
        for node in endpoints.keys where readings[node] == nil && unreachable[node] == nil {
            readings[node] = NodeObservation()
        }
        let scratchKernels = RehearsalKernels(
            readings: readings, unreachable: unreachable,
            addresses: nodeAddresses(intent: intent, records: records, unnamed: removedChannels),
            reqid: Reqid(intent.reqid))
        let scratchStore = ScratchGenerationStore(channels: rehearsedRecords)
        let planClock = RehearsalClock(startingAt: context.clock.now())
        let rehearsal = FleetReconciler(
            store: scratchStore, kernels: scratchKernels, reqid: Reqid(intent.reqid), clock: planClock,
            logger: Logger(label: "meshward.plan", factory: { _ in SwiftLogNoOpLogHandler() }),
            journalsOperations: false)
        let report = try await rehearsal.converge(
            intent: rehearsedIntent, waitForDrain: true, rekeyRequests: rekeyRequests,
            defaultDrain: settings?.drain ?? .seconds(5))

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
                    operations: pass.results.mapInRuns { result in
                        PlanDocument.Operation(
                            node: result.planned.node, operation: result.planned.operation.kind,
                            target: Self.label(result.planned.operation, placeholders: placeholders),
                            channel: result.planned.channel?.description)
                    }))
        }
        let issued = report.passes.flatMap(\.issued)
        let created = issued.filter { $0.reason == .new }.count
        let operations = stages.reduce(0) { $0 + $1.operations.count }
        // Channels whose kernel objects change without a new generation (traffic added to a
        // flow, enforcement changed): every channel with operations that is neither issued a
        // generation nor removed. (One lookup per operation; no set of every operation's channel.)
        let issuedChannels = Set(issued.map(\.channel))
        var updated: Set<ChannelID> = []
        for pass in report.passes {
            for result in pass.results {
                guard let channel = result.planned.channel, !issuedChannels.contains(channel),
                    !removedChannels.contains(channel)
                else { continue }
                updated.insert(channel)
            }
        }
        let settingChanges = settings.map { PlanSettingChange.changes(from: $0, to: spec) } ?? []
        let revisionChanged = settings?.revision != spec.revision
        var warnings: [String] = []
        if records.isEmpty {
            let owned = MeshwardController.ownedObjects(observations)
            if !owned.isEmpty {
                warnings.append(ControllerError.lostStore(directory: context.stateDirectory, owned: owned).description)
            }
        }
        let removal = RemovalCount(held: allRecords.count, unnamed: removedChannels, in: records)
        if removal.isMassRemoval {
            warnings.append(
                "this plan removes \(removal.removed) of the \(removal.held) channels the Store holds (more than "
                    + "half): apply refuses it without --force")
        }
        let fingerprint = await fingerprints?.value
        let plan = PlanDocument(
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
            // The fingerprints are for `plan --out`, which a plan that read no kernel cannot make.
            stateFingerprint: fingerprint?.store, fleetFingerprint: fingerprint?.fleet,
            kernelsRead: refresh)
        // In a one-shot command, the process's exit frees these (see `ExitWithoutFreeing`).
        ExitWithoutFreeing.process.keep(
            KeptRehearsal(
                records: allRecords, rehearsedRecords: rehearsedRecords, readings: readings, report: report,
                kernels: scratchKernels, store: scratchStore))
        return (plan, FleetObservation(observations: observations, unreachable: unreachable, enrolling: enrolling))
    }

    /// What a rehearsal is done with once its document is made.
    private struct KeptRehearsal: Sendable {
        let records: [ChannelID: ChannelRecord]
        let rehearsedRecords: [ChannelID: ChannelRecord]
        let readings: [String: NodeObservation]
        let report: ConvergeReport
        let kernels: RehearsalKernels
        let store: ScratchGenerationStore
    }

    /// Every node read as it is now, through the kernels `apply` would use.
    private func read(
        endpoints: [String: NodeEndpoint], spec: FleetIntent, intent: FleetIntent, records: [ChannelID: ChannelRecord],
        scope: FleetScope?, store: (any ControllerStore)?,
        prefetched: (nodes: Set<String>, observations: [String: Result<NodeObservation, KernelError>])? = nil
    ) async throws -> (observations: [String: NodeObservation], unreachable: [String: String], enrolling: Set<String>) {
        // The simulated nodes straight from the fleet file, each row decoded into its reading:
        // the fleet is never loaded (at a thousand nodes, its tables would be most of the plan's
        // memory). A targeted plan reads through its scope's kernels below. `prefetched` holds
        // the readings of some of them already (the spec's, read while the Store loaded).
        let simulated = Set(endpoints.filter { $0.value == .sim }.keys)
        let unread = simulated.subtracting(prefetched?.nodes ?? [])
        if scope == nil, !simulated.isEmpty,
            var direct = unread.isEmpty
                ? prefetched?.observations
                : try SimulatedFleet.observations(
                    from: context.simulatedFleetURL, of: unread, reqid: Reqid(intent.reqid))
        {
            if !unread.isEmpty, let prefetched { direct.merge(prefetched.observations) { read, _ in read } }
            let specNodes = Set(spec.nodes.filter { $0.endpoint == .sim }.map(\.name))
            var others = endpoints
            for node in simulated { others[node] = nil }
            var reading:
                (observations: [String: NodeObservation], unreachable: [String: String], enrolling: Set<String>) =
                    ([:], [:], [])
            if !others.isEmpty {
                reading = try await read(
                    endpoints: others, spec: spec, intent: intent, records: records, scope: nil, store: store)
            }
            for node in simulated {
                switch direct[node] {
                case .success(let observation): reading.observations[node] = observation
                case .failure(let error): reading.unreachable[node] = "\(error)"
                case nil where specNodes.contains(node):
                    // A node of the spec the file does not hold yet: a machine with an empty kernel.
                    reading.observations[node] = NodeObservation()
                case nil:
                    reading.unreachable[node] =
                        "\(KernelError.unreachable(node: node, reason: "the simulated fleet has no node named \(node)"))"
                }
            }
            return reading
        }
        let simulatedFleet = endpoints.values.contains(.sim) ? try context.loadSimulatedFleet(intent: spec) : nil
        let everything = context.session.kernels(
            endpoints: endpoints, simulated: simulatedFleet, reqid: Reqid(intent.reqid),
            agents: try await context.agentConnector(for: endpoints, intent: spec, store: store, epoch: 0))
        let live: any FleetKernels = scope.map { ScopedKernels(everything, scope: $0) } ?? everything
        let reader = FleetReconciler(
            store: ScratchGenerationStore(channels: records), kernels: live, reqid: Reqid(intent.reqid),
            clock: context.clock,
            logger: context.logger)
        let reading = await reader.observe(Set(endpoints.keys))
        // Everything after this runs on the rehearsal's kernels: the live kernels are done with.
        await everything.close()
        return reading
    }

    /// The target of `operation` with a placeholder generation's SPI shown as `new-N` (the real
    /// SPI is chosen by `apply`). One dictionary lookup on the operation's own SPI, written in
    /// place of the SPI as the target is formatted: labelling a plan costs time linear in its
    /// operations, whatever the number of placeholders.
    static func label(_ operation: KernelOperation, placeholders: [SPI: Int]) -> String {
        operation.target(spiText: operation.spi.flatMap { placeholders[$0] }.map { "new-\($0)" })
    }

    private func nodeAddresses(
        intent: FleetIntent, records: [ChannelID: ChannelRecord], unnamed: Set<ChannelID>
    ) -> [String: [IPAddress]] {
        // A node of the spec has the spec's addresses; a node the spec no longer names has the
        // addresses its recorded generations used. Only a channel the spec does not name
        // (`unnamed`) can have such a node at either end.
        let named = Set(intent.nodes.map(\.name))
        var result: [String: Set<IPAddress>] = [:]
        for id in unnamed where !named.contains(id.from) || !named.contains(id.to) {
            guard let record = records[id] else { continue }
            for generation in record.generations {
                if !named.contains(record.id.from) { result[record.id.from, default: []].insert(generation.source) }
                if !named.contains(record.id.to) { result[record.id.to, default: []].insert(generation.destination) }
            }
        }
        for node in intent.nodes { result[node.name] = Set(node.addresses) }
        return result.mapValues { $0.sorted() }
    }

}
