import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Store
import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

/// Every operation is journaled as planned before a kernel receives it; a journal that refuses
/// the entry stops the run before any kernel changes.
@Suite("Operations journaled before they are sent")
struct OperationJournalTests {
    @Test("every operation is journaled as planned before its kernel receives it, then completed")
    func journaledBeforeSending() async throws {
        let store = ScratchGenerationStore(channels: [:])
        let fleet = SimulatedFleet()
        let kernels = JournalCheckingKernels(fleet: fleet, store: store)
        let intent = try FleetSpec.pair().compile()
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
        let reconciler = FleetReconciler(
            store: store, kernels: kernels, reqid: .meshwardDefault, clock: ManualClock(),
            logger: .init(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let report = try await reconciler.converge(intent: intent, waitForDrain: true)
        #expect(report.outcome == .converged)
        #expect(kernels.unjournaled == [], "operations sent without a planned journal entry")
        #expect(kernels.batches > 0)
        #expect(store.journal.count == report.operationCount)
        #expect(store.journal.allSatisfy { $0.result == .applied && $0.appliedAt != nil })
    }

    @Test("a rehearsal that journals nothing sends the same operations and leaves the journal empty")
    func unjournaledRehearsalSendsTheSame() async throws {
        let intent = try FleetSpec.pair().compile()
        func run(journaling: Bool) async throws -> (ConvergeReport, ScratchGenerationStore, SimulatedFleet) {
            let store = ScratchGenerationStore(channels: [:])
            let fleet = SimulatedFleet()
            fleet.withState { state in
                for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
            }
            let reconciler = FleetReconciler(
                store: store, kernels: SimulatedFleetKernels(fleet: fleet, reqid: .meshwardDefault),
                reqid: .meshwardDefault, clock: ManualClock(),
                logger: .init(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                journalsOperations: journaling)
            return (try await reconciler.converge(intent: intent, waitForDrain: true), store, fleet)
        }
        let (journaled, journaledStore, _) = try await run(journaling: true)
        let (rehearsed, rehearsedStore, rehearsedFleet) = try await run(journaling: false)
        #expect(rehearsed.outcome == .converged)
        #expect(rehearsed.operationCount > 0)
        #expect(
            rehearsed.passes.map { $0.results.map(\.planned.operation.kind) }
                == journaled.passes.map { $0.results.map(\.planned.operation.kind) })
        #expect(journaledStore.journal.count == journaled.operationCount)
        #expect(rehearsedStore.journal.isEmpty)
        let held = intent.nodes.map { node in
            rehearsedFleet.withState {
                (try? $0.observe(node: node.name, reqid: .meshwardDefault))?.securityAssociations.count ?? 0
            }
        }
        #expect(held.reduce(0, +) > 0, "the unjournaled operations reached the kernels")
    }

    @Test("a journal that refuses the planned entries fails the run and no kernel changes")
    func refusedJournalFailsTheRun() async throws {
        let fixture = PlannerFixture(store: RefusingJournalStore())
        let intent = try FleetSpec.pair().compile()
        fixture.provision(intent)
        let before = fixture.fleet.state
        await #expect(throws: ReconcileError.self) { try await fixture.pass(intent) }
        #expect(fixture.fleet.state == before)
    }
}

/// Kernels that check, as each batch arrives, that every operation in it is already in the
/// journal as planned.
private final class JournalCheckingKernels: FleetKernels, @unchecked Sendable {
    let fleet: SimulatedFleet
    let store: ScratchGenerationStore
    private let lock = NSLock()
    private(set) var unjournaled: [String] = []
    private(set) var batches = 0

    init(fleet: SimulatedFleet, store: ScratchGenerationStore) {
        self.fleet = fleet
        self.store = store
    }

    var knownNodes: Set<String> { Set(fleet.withState { $0.nodes.keys }) }

    func kernel(for node: String) async throws -> any NodeKernel {
        CheckingKernel(inner: fleet.kernel(for: node, reqid: .meshwardDefault), owner: self)
    }

    func persist() throws {}

    func check(_ operations: [KernelOperation], on node: String) {
        let planned = store.journal.filter { $0.node == node && $0.result == .planned }.map(\.target)
        lock.withLock {
            batches += 1
            var remaining = planned
            for operation in operations {
                if let position = remaining.firstIndex(of: operation.target) {
                    remaining.remove(at: position)
                } else {
                    unjournaled.append("\(node): \(operation)")
                }
            }
        }
    }

    struct CheckingKernel: NodeKernel {
        let inner: SimulatedKernel
        let owner: JournalCheckingKernels
        var node: String { inner.node }
        var reqid: Reqid { inner.reqid }
        func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
            try await inner.observe(deadline: deadline)
        }
        func apply(
            _ operations: [KernelOperation], deadline: ContinuousClock.Instant
        ) async throws
            -> [OperationResult]
        {
            owner.check(operations, on: node)
            return try await inner.apply(operations, deadline: deadline)
        }
    }
}

/// A generation store whose journal refuses every write.
private final class RefusingJournalStore: GenerationStore, JournalStore {
    let inner = ScratchGenerationStore(channels: [:])
    struct Refused: Error {}
    func loadChannels() throws -> [ChannelID: ChannelRecord] { try inner.loadChannels() }
    func hasChannels() throws -> Bool { try inner.hasChannels() }
    func issueGenerations(_ requests: [GenerationRequest], now: Date) throws -> [Generation] {
        try inner.issueGenerations(requests, now: now)
    }
    func update(_ records: [ChannelRecord]) throws { try inner.update(records) }
    func removeChannels(_ ids: [ChannelID]) throws { try inner.removeChannels(ids) }
    func appendJournal(_ entries: [JournalEntry]) throws -> [JournalEntry] { throw Refused() }
    func completeJournal(_ entries: [JournalEntry]) throws { throw Refused() }
    func journal(limit: Int?, node: String?) throws -> [JournalEntry] { throw Refused() }
    func pruneJournal(plannedBefore date: Date) throws -> Int { throw Refused() }
    func unaccountedSAs() throws -> [UnaccountedSA] { try inner.unaccountedSAs() }
    func recordUnaccountedSAs(freed: [UnaccountedSA], forgotten: [(destination: IPAddress, spi: SPI)]) throws {
        try inner.recordUnaccountedSAs(freed: freed, forgotten: forgotten)
    }
}
