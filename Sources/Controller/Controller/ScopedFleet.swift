import Foundation
import Kernel
import MeshwardCore
import Reconciler
import Store
import Synchronization

/// The kernels as a targeted run sees them: every observation narrowed to the scope.
/// Operations pass through unchanged (the planner only plans for what it sees).
final class ScopedKernels: FleetKernels {
    private let base: any FleetKernels
    private let scope: FleetScope

    init(_ base: any FleetKernels, scope: FleetScope) {
        self.base = base
        self.scope = scope
    }

    var knownNodes: Set<String> { base.knownNodes }

    func kernel(for node: String) async throws -> any NodeKernel {
        ScopedNodeKernel(base: try await base.kernel(for: node), scope: scope)
    }

    func persist() throws { try base.persist() }

    func close() async { await base.close() }
}

/// One node's kernel narrowed to a scope.
struct ScopedNodeKernel: NodeKernel {
    let base: any NodeKernel
    let scope: FleetScope

    var node: String { base.node }
    var reqid: Reqid { base.reqid }

    func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
        scope.narrow(try await base.observe(deadline: deadline))
    }

    func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult] {
        try await base.apply(operations, deadline: deadline)
    }
}

/// The Store as a targeted run sees it: only the target's channel records. An unaccounted SA
/// that the scope hid from the run is never forgotten (the run did not see it go; it is
/// another channel's). Writes to the target's records go through.
final class ScopedGenerationStore: GenerationStore, JournalStore {
    private let base: any PassStore
    private let scope: FleetScope

    init(_ base: any PassStore, scope: FleetScope) {
        self.base = base
        self.scope = scope
    }

    func loadChannels() async throws -> [ChannelID: ChannelRecord] {
        try await base.loadChannels().filter { scope.target.covers($0.key) }
    }

    func hasChannels() async throws -> Bool { try await !loadChannels().isEmpty }

    func issueGenerations(_ requests: [GenerationRequest], now: Date) async throws -> [Generation] {
        try await base.issueGenerations(requests, now: now)
    }

    func update(_ records: [ChannelRecord]) async throws { try await base.update(records) }

    func removeChannels(_ ids: [ChannelID]) async throws { try await base.removeChannels(ids) }

    @discardableResult func appendJournal(_ entries: [JournalEntry]) async throws -> [JournalEntry] {
        try await base.appendJournal(entries)
    }

    func completeJournal(_ entries: [JournalEntry]) async throws { try await base.completeJournal(entries) }

    func journal(limit: Int?, node: String?) async throws -> [JournalEntry] {
        try await base.journal(limit: limit, node: node)
    }

    @discardableResult func pruneJournal(plannedBefore date: Date) async throws -> Int {
        try await base.pruneJournal(plannedBefore: date)
    }

    func unaccountedSAs() async throws -> [UnaccountedSA] { try await base.unaccountedSAs() }

    func recordUnaccountedSAs(freed: [UnaccountedSA], forgotten: [(destination: IPAddress, spi: SPI)]) async throws {
        let hidden = scope.hidden.all
        try await base.recordUnaccountedSAs(
            freed: freed,
            forgotten: forgotten.filter { !hidden.contains(SAIdentifier(destination: $0.destination, spi: $0.spi)) })
    }
}
