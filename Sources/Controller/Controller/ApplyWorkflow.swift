import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import Reconciler
import Store

/// One `apply` of a spec while the lease is held: the settings recorded, the passes run until
/// the fleet converges (or only drains or unreachable nodes remain), the revision recorded,
/// and the document that says what happened.
struct ApplyWorkflow {
    let context: ControllerContext
    let store: any ControllerStore

    /// Records the settings, runs the passes under `fence`, and records the revision.
    /// `firstReading`: the fleet as the plan made under this lease read it, which the first
    /// pass reuses (`FleetReconciler.converge`).
    func run(
        _ intent: FleetIntent, source: String, command: String, waitForDrain: Bool,
        rekey: RekeySelection?, target: ApplyTarget?,
        fence: any WriteFence, lease: Lease?, firstReading: FleetObservation? = nil, planningOnCache: Bool = false,
        onPass: @escaping @Sendable (PassReport) async -> Void
    ) async throws -> ApplyDocument {
        let epoch = lease?.epoch ?? 0
        let previous = try await context.session.settings(under: lease, in: store)
        let records = try await store.loadChannels()
        let scope = try target.map { try FleetScope(target: $0, intent: intent, records: records) }
        var rekeyRequests = previous?.rekeyRequests ?? [:]
        if let rekey {
            let now = context.clock.now()
            for id in try rekey.channels(in: intent) { rekeyRequests[id] = now }
        }
        let endpoints = ControllerContext.nodeEndpoints(
            for: intent, remembered: previous?.endpoints ?? [:], records: records)
        // A targeted run leaves the rest of the fleet on the old revision: it records none.
        let revision = scope == nil ? intent.revision : (previous?.revision ?? intent.revision)
        var settings = ControllerSettings(
            cluster: intent.cluster, reqid: intent.reqid, revision: revision,
            rekeyEvery: intent.channels.first?.rekey.every ?? previous?.rekeyEvery ?? .seconds(86_400),
            rekeyPackets: intent.channels.first?.rekey.packets,
            drain: intent.channels.first?.drain ?? previous?.drain ?? .seconds(5),
            endpoints: endpoints, rekeyRequests: rekeyRequests)
        try await context.session.save(settings, under: lease, to: store)

        let simulated = try context.loadSimulatedFleet(intent: intent)
        context.observers.simulatedFleetOpened?(simulated, context.simulatedFleetURL)
        // Nodes whose every certificate is revoked leave the fleet for their peers and are
        // never dialled.
        let revoked = RevokedNodes(try await store.revokedNodes())
        let agents = try await context.agentConnector(
            for: endpoints, intent: intent, store: store, epoch: epoch, enrolls: true)
        let reached = endpoints.filter { !revoked.names.contains($0.key) }
        let session = context.session
        if scope == nil {
            // The kept netlink kernels of nodes that left, or whose endpoint changed, go.
            await session.localKernels.keep(only: reached, reqid: Reqid(intent.reqid))
        }
        let kernels = session.kernels(
            endpoints: reached, simulated: simulated, simulatedFile: context.simulatedFleetURL,
            reqid: Reqid(intent.reqid), agents: agents)
        let fleetKernels = revoked.kernels(kernels)
        // The kernels of the agents and of the `local` and `netns:` nodes are watched for the life
        // of the session (design.md §12); the watch's streams reach them through the session's
        // kept connections and kernels. `sim` nodes are polled.
        let watchedNodes = Set(reached.filter { FleetSession.watchedSchemes.contains($0.value.scheme) }.keys)
        if scope == nil {
            session.watch.follow(watchedNodes) { node in try await session.watchedKernel(for: node) }
        }
        let reconciler = FleetReconciler(
            store: scope.map { ScopedGenerationStore(store, scope: $0) } ?? store,
            kernels: scope.map { ScopedKernels(fleetKernels, scope: $0) } ?? fleetKernels, reqid: Reqid(intent.reqid),
            clock: context.clock, logger: context.logger, fence: fence, recorder: context.recorder,
            cache: context.session.watch)
        let clock = context.clock
        let runIntent = revoked.intent(scope?.intent ?? intent)
        let contacts = AgentContactLog()
        let report: ConvergeReport
        do {
            report = try await reconciler.converge(
                intent: runIntent, waitForDrain: waitForDrain,
                rekeyRequests: ControllerContext.requests(rekeyRequests, in: runIntent),
                defaultDrain: settings.drain, firstReading: firstReading, planningOnCache: planningOnCache,
                onPass: { pass in
                    _ = try await fence.confirm(at: clock.now())
                    contacts.note(pass, agents: context.session.agents, endpoints: endpoints)
                    await onPass(pass)
                })
        } catch {
            await kernels.close()
            throw error
        }

        if scope == nil { await context.markAgentsReady(after: report, endpoints: endpoints) }
        // Last, as the agents listen again with a renewed certificate once they confirmed it.
        let renewed = await context.renewAgentCertificates(
            after: report, endpoints: endpoints, intent: intent, store: store)
        for (node, expires) in renewed { contacts.renewed(node, expires: expires) }
        await kernels.close()
        // The connections of nodes that left the fleet, or whose every certificate is revoked, go.
        if scope == nil {
            await context.session.agents.keep(
                only: Set(endpoints.filter { $0.value.scheme == .agent && !revoked.names.contains($0.key) }.keys))
        }
        let agentNodes = Set(endpoints.filter { $0.value.scheme == .agent }.keys)
        let gone = Set(try await store.agentContacts().keys).subtracting(agentNodes)
        try await store.recordAgentContacts(contacts.all, forgetting: gone)
        if scope == nil {
            let now = context.clock.now()
            let watchable = Set(endpoints.filter { FleetSession.watchedSchemes.contains($0.value.scheme) }.keys)
            let watched = context.session.watch.nodes.filter { watchable.contains($0.node) }
            // A fleet of `sim` nodes only, never watched, writes nothing.
            if !watched.isEmpty || !watchable.isEmpty {
                try await store.recordWatch(
                    Dictionary(
                        uniqueKeysWithValues: watched.map {
                            (
                                $0.node,
                                WatchRecord(
                                    state: $0.state, lastMessageAt: $0.lastMessageAt, lastChangeAt: $0.lastChangeAt,
                                    snapshots: $0.snapshots, digestMismatches: $0.digestMismatches, resumes: $0.resumes,
                                    recordedAt: now)
                            )
                        }))
            }
        }

        // Forget endpoints of nodes that have nothing left, and requests that were honoured.
        let remaining = try await store.loadChannels()
        if scope == nil { try await revokeRemovedNodes(intent, remaining: remaining) }
        settings.endpoints = ControllerContext.nodeEndpoints(
            for: intent, remembered: settings.endpoints, records: remaining)
        settings.rekeyRequests = rekeyRequests.filter { channel, requested in
            guard let record = remaining[channel] else { return false }
            return !record.generations.contains { $0.state == .active && $0.createdAt >= requested }
        }
        try await context.session.save(settings, under: lease, to: store)
        // What the kernels were given, for `plan --refresh=false`; a targeted run gave only part.
        if scope == nil { try await AppliedSpec.record(intent, in: store) }

        let document = applyDocument(intent, report: report)
        let latest = try await store.revisions(limit: 1).first
        if latest?.hash != intent.revision || document.operations > 0 {
            _ = try await store.recordRevision(
                hash: intent.revision, source: source, summary: summary(of: report), at: context.clock.now(),
                command: command)
        }
        return document
    }

    /// Revokes the certificates of every node the spec no longer names once none of its
    /// channels is left (its peers' side cleaned by the passes just run); a node with channels
    /// left is revoked by a later run.
    private func revokeRemovedNodes(_ intent: FleetIntent, remaining: [ChannelID: ChannelRecord]) async throws {
        let named = Set(intent.nodes.map(\.name))
        let involved = Set(remaining.keys.flatMap { [$0.from, $0.to] })
        let issuedNodes = Set(try await store.issuedCertificates(node: nil).map(\.node))
        for node in issuedNodes.subtracting(named).subtracting(involved).sorted() {
            let revoked = try await store.revokeCertificates(
                ofNode: node, reason: Self.removedReason, now: context.clock.now())
            if !revoked.isEmpty {
                context.logger.notice(
                    "revoked the certificates of a node removed from the spec",
                    metadata: ["node": "\(node)", "certificates": "\(revoked.count)"])
            }
        }
    }

    /// The reason recorded for the certificates of a node removed from the spec.
    static let removedReason = "removed from the spec"

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

}
