import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

/// Lost replies: a batch that reached the kernel but whose answer was lost.
@Suite("Indeterminate operations")
struct IndeterminateOperationTests {
    @Test("an apply whose answer is lost is journaled indeterminate and never resent: the next observation decides")
    func lostAnswerIsIndeterminate() async throws {
        let store = ScratchGenerationStore(channels: [:])
        let fleet = SimulatedFleet()
        let intent = try FleetSpec.pair().compile()
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
        let kernels = LostAnswerKernels(fleet: fleet, losingPass: 1)
        let reconciler = FleetReconciler(
            store: store, kernels: kernels, reqid: .meshwardDefault, clock: ManualClock(),
            logger: .init(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        var records: [ChannelID: ChannelRecord] = [:]
        let first = try await reconciler.runPass(number: 1, intent: intent, records: &records)
        #expect(!first.results.isEmpty)
        #expect(first.results.allSatisfy { if case .indeterminate = $0.outcome { true } else { false } })
        #expect(store.journal.allSatisfy { if case .indeterminate = $0.result { $0.appliedAt == nil } else { false } })
        // They did take effect: the next pass sees them and sends the next step, not the same again.
        let second = try await reconciler.runPass(number: 2, intent: intent, records: &records)
        let resent = Set(first.results.map(\.planned)).intersection(second.results.map(\.planned))
        #expect(resent.isEmpty, "resent: \(resent)")
        #expect(!second.results.isEmpty)
    }
}

/// The simulated fleet, with every answer of one pass's batches lost after the operations
/// took effect.
private final class LostAnswerKernels: FleetKernels, @unchecked Sendable {
    let fleet: SimulatedFleet
    let losingPass: Int
    private let lock = NSLock()
    private var observations = 0

    init(fleet: SimulatedFleet, losingPass: Int) {
        self.fleet = fleet
        self.losingPass = losingPass
    }

    var knownNodes: Set<String> { Set(fleet.withState { $0.nodes.keys }) }

    func kernel(for node: String) async throws -> any NodeKernel {
        LosingKernel(inner: fleet.kernel(for: node, reqid: .meshwardDefault), owner: self)
    }

    func persist() throws {}

    /// The pass being run, counted by observations (two nodes observe once per pass).
    func noteObservation() { lock.withLock { observations += 1 } }
    var pass: Int { lock.withLock { (observations + 1) / 2 } }

    struct LosingKernel: NodeKernel {
        let inner: SimulatedKernel
        let owner: LostAnswerKernels
        var node: String { inner.node }
        var reqid: Reqid { inner.reqid }
        func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
            owner.noteObservation()
            return try await inner.observe(deadline: deadline)
        }
        func apply(
            _ operations: [KernelOperation], deadline: ContinuousClock.Instant
        ) async throws
            -> [OperationResult]
        {
            let results = try await inner.apply(operations, deadline: deadline)
            guard owner.pass == owner.losingPass else { return results }
            return results.map {
                OperationResult(operation: $0.operation, outcome: .indeterminate(reason: "reply lost"))
            }
        }
    }
}
