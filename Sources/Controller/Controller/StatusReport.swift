import Agent
import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import Reconciler
import Store

/// `status` and `history`: what the kernels and the Store show now, and what was applied.
/// Reads only; needs no spec and no lease.
struct StatusReport {
    let context: ControllerContext

    /// Per node and per channel, as the kernels and the Store show them now. Needs no spec:
    /// what it knows of the fleet comes from the last `apply`.
    ///
    /// `channelFilter` narrows the channel list (`--step`, `--drift`, `--channel`); the summary
    /// always counts every channel read.
    func status(
        node filter: String? = nil, channels channelFilter: StatusFilter = StatusFilter()
    )
        async throws -> StatusDocument
    {
        guard try context.hasState() else { throw ControllerError.noState(directory: context.stateDirectory) }
        let store = try await context.openStore()
        let records = try await store.loadChannels()
        let settings = try await ControllerSettings.load(from: store)
        let simulated = try SimulatedFleet.load(from: context.simulatedFleetURL)
        var endpoints = settings?.endpoints ?? [:]
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
        var firstAddresses: [String: IPAddress] = [:]
        for record in records.values {
            for generation in record.generations {
                firstAddresses[record.id.from] = min(
                    firstAddresses[record.id.from] ?? generation.source, generation.source)
                firstAddresses[record.id.to] = min(
                    firstAddresses[record.id.to] ?? generation.destination, generation.destination)
            }
        }
        // A node whose every certificate is revoked is never dialled, by status neither.
        let revoked = try await store.revokedNodes()
        endpoints = endpoints.filter { !revoked.contains($0.key) }
        var agents: AgentPoolConnector?
        if let settings {
            agents = try await context.agentConnector(
                for: endpoints, cluster: settings.cluster, addresses: firstAddresses, store: store, epoch: 0)
        }
        let kernels = context.session.kernels(
            endpoints: endpoints, simulated: simulated, reqid: reqid, agents: agents)
        let reader = FleetReconciler(
            store: ScratchGenerationStore(channels: records), kernels: kernels, reqid: reqid, clock: context.clock,
            logger: context.logger)
        let contacts = endpoints.values.contains { $0.scheme == .agent } ? try await store.agentContacts() : [:]
        let watchRecords =
            endpoints.values.contains { FleetSession.watchedSchemes.contains($0.scheme) }
            ? try await store.watchRecords() : [:]
        let now = context.clock.now()
        let (observations, unreachable, _) = await reader.observe(Set(endpoints.keys))
        var warnings: [String] = []
        for node in revoked.intersection(shown).sorted() {
            warnings.append(
                "node \(node): every certificate of it is revoked; it is never dialled (new credentials bring it back)")
        }
        if records.isEmpty {
            let owned = MeshwardController.ownedObjects(observations)
            if !owned.isEmpty {
                warnings.append(ControllerError.lostStore(directory: context.stateDirectory, owned: owned).description)
            }
        }

        var nodes: [StatusDocument.Node] = []
        for name in endpoints.keys.filter(shown.contains).sorted() {
            let observation = observations[name]
            var node = StatusDocument.Node(
                name: name, endpoint: endpoints[name]?.description ?? "unknown", reachable: observation != nil,
                error: unreachable[name], securityAssociations: observation?.securityAssociations.count ?? 0,
                policies: observation?.policies.count ?? 0,
                dropCounters: (observation?.statistics ?? [:]).filter { $0.value > 0 })
            if let scheme = endpoints[name]?.scheme, FleetSession.watchedSchemes.contains(scheme),
                let record = watchRecords[name]
            {
                node.watch = StatusDocument.WatchStatus(
                    state: record.state, lastMessage: record.lastMessageAt, lastChange: record.lastChangeAt,
                    snapshots: record.snapshots, digestMismatches: record.digestMismatches, resumes: record.resumes,
                    recordedAt: record.recordedAt)
            }
            if endpoints[name]?.scheme == .agent {
                node.agent = agentStatus(name, observation: observation, recorded: contacts[name], now: now)
                node.agent?.watch = node.watch
                if let expires = node.agent?.certificateExpires,
                    let warning = Self.expiryWarning(name, expires, now: now)
                {
                    warnings.append(warning)
                }
            }
            nodes.append(node)
        }
        await kernels.close()
        let observed = ObservedObjects(observations)
        let channels = records.values.sorted { $0.id < $1.id }
            .filter { filter == nil || $0.id.from == filter || $0.id.to == filter }
            .map { record in
                channelStatus(record, observed: observed, settings: settings, now: now)
            }
        let lease = try await store.currentLease().map {
            StatusDocument.LeaseStatus(
                holder: $0.holder, epoch: $0.epoch, acquiredAt: $0.acquiredAt, expiresAt: $0.expiresAt)
        }
        return StatusDocument(
            cluster: settings?.cluster, revision: settings?.revision, observedAt: now, nodes: nodes,
            channels: channels.filter(channelFilter.includes), warnings: warnings,
            summary: StatusDocument.Summary(nodes: nodes, channels: channels), lease: lease)
    }

    /// How close to its expiry an agent certificate is warned of.
    static let expiryWarningWindow: TimeInterval = 86_400

    /// The warning for an agent whose certificate expires within a day (or has expired); nil
    /// otherwise. `apply` and every reconcile cycle renew a certificate once half its life has
    /// passed, so one this close to its end was not renewed (the agent was not reached, or its
    /// renewal failed: the controller's log says why).
    static func expiryWarning(_ node: String, _ expires: Date, now: Date) -> String? {
        let left = expires.timeIntervalSince(now)
        guard left < expiryWarningWindow else { return nil }
        let at = ISO8601DateFormatter().string(from: expires)
        if left <= 0 {
            return "node \(node): its agent's certificate expired at \(at) and was not renewed; "
                + "issue a new one with `meshward agent credentials`"
        }
        return "node \(node): its agent's certificate expires at \(at), within a day, and was not renewed; "
            + "`meshward apply` renews it while the agent is reachable (the log says why it was not), "
            + "or issue a new one with `meshward agent credentials`"
    }

    /// A node's agent as this status saw it when it answered, else as the Store recorded it.
    private func agentStatus(
        _ node: String, observation: NodeObservation?, recorded: AgentContact?, now: Date
    ) -> StatusDocument.AgentStatus? {
        let kernel = context.session.agents.link(for: node)
        if let observation, let kernel {
            return StatusDocument.AgentStatus(
                address: kernel.address,
                certificateExpires: observation.agentCertificateExpiry ?? kernel.certificateNotValidAfter
                    ?? recorded?.certificateNotValidAfter,
                bootID: observation.bootID, lastContact: now, live: true,
                tls: kernel.negotiatedTLS.map { .init(protocol: $0.versionName, keyExchange: $0.groupName) })
        }
        guard let address = recorded?.address ?? kernel?.address else { return nil }
        return StatusDocument.AgentStatus(
            address: address, certificateExpires: recorded?.certificateNotValidAfter, bootID: recorded?.bootID,
            lastContact: recorded?.lastContact, live: false)
    }

    private func channelStatus(
        _ record: ChannelRecord, observed: ObservedObjects, settings: ControllerSettings?, now: Date
    ) -> StatusDocument.Channel {
        let active = record.generations.last { $0.state == .active }
        // The same judgement the drift metric makes (`ChannelRecord.drift`).
        let drift = record.drift(in: observed)
        let rekeyEvery = settings?.rekeyEvery ?? .seconds(86_400)
        let nextRekey = active.map { $0.createdAt.addingTimeInterval(rekeyEvery.timeInterval) }
        let rekeyIn = nextRekey.map { Int($0.timeIntervalSince(now).rounded(.down)) }
        func counters(on node: String) -> StatusDocument.SACounterReport? {
            guard let active else { return nil }
            let id = SAIdentifier(destination: active.destination, spi: active.spi)
            guard let sa = observed.association(id, on: node) else { return nil }
            return StatusDocument.SACounterReport(
                packets: sa.counters.packets, bytes: sa.counters.bytes,
                firstUsed: sa.counters.useTime == 0 ? nil : Date(timeIntervalSince1970: Double(sa.counters.useTime)))
        }
        let draining = record.generations.last { $0.state == .retiring && $0.supersededAt != nil }
        let drain = settings?.drain ?? .seconds(5)
        return StatusDocument.Channel(
            channel: record.id.description, from: record.id.from, to: record.id.to, family: record.id.family.rawValue,
            step: record.step.rawValue, generation: active?.number, spi: active?.spi.hex,
            cipher: active?.cipher.rawValue,
            keyAgeSeconds: active.map { Int(now.timeIntervalSince($0.createdAt)) }, nextRekey: nextRekey,
            drift: !drift.isEmpty, driftDetail: drift, rekeyInSeconds: rekeyIn, rekeyOverdue: (rekeyIn ?? 0) < 0,
            outbound: counters(on: record.id.from), inbound: counters(on: record.id.to),
            drainUntil: draining?.supersededAt?.addingTimeInterval(drain.timeInterval))
    }

    /// Applied revisions, newest first.
    func history(limit: Int? = nil) async throws -> HistoryDocument {
        guard try context.hasState() else { throw ControllerError.noState(directory: context.stateDirectory) }
        let revisions = try await context.openStore().revisions(limit: limit)
        return HistoryDocument(
            revisions: revisions.map {
                .init(
                    id: $0.id, hash: $0.hash, source: $0.source, appliedAt: $0.appliedAt, summary: $0.summary,
                    command: $0.command)
            })
    }
}
