import Foundation
import Synchronization
import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

/// Kernel writes are fenced by the lease: a pass sends nothing unless its lease is confirmed,
/// for the pass and again right before each node's batch.
@Suite("Kernel writes fenced by the lease")
struct WriteFenceTests {
    @Test("a pass whose lease cannot be confirmed, or would expire too soon, changes no kernel")
    func unconfirmedLeaseSendsNothing() async throws {
        let intent = try FleetSpec.pair().compile()
        for fence in [ThrowingFence() as any WriteFence, ShortFence()] {
            let fixture = PlannerFixture(fence: fence)
            fixture.provision(intent)
            let before = fixture.fleet.state
            await #expect(throws: ReconcileError.self) { try await fixture.pass(intent) }
            #expect(fixture.fleet.state == before, "\(fence): a kernel changed")
        }
    }

    @Test("a lease confirmed for the pass but lost right before the nodes' batches changes no kernel")
    func leaseLostBeforeTheBatchesSendsNothing() async throws {
        let intent = try FleetSpec.pair().compile()
        let fence = LosingFence()
        let fixture = PlannerFixture(fence: fence)
        fixture.provision(intent)
        let before = fixture.fleet.state
        let report = try await fixture.pass(intent)
        #expect(fence.confirmations >= 2, "the batches were sent without confirming the lease again")
        #expect(!report.results.isEmpty)
        for (planned, outcome) in report.results {
            guard case .notAttempted(let reason) = outcome else {
                Issue.record("\(planned) was sent: \(outcome)")
                continue
            }
            #expect(reason.contains("the lease could not be renewed right before it"), "\(reason)")
        }
        #expect(fixture.fleet.state == before, "a kernel changed")
    }
}

/// A fence that refuses: the lease was lost.
private struct ThrowingFence: WriteFence, CustomStringConvertible {
    struct Lost: Error {}
    func confirm(at now: Date) throws -> Date { throw Lost() }
    var description: String { "a lost lease" }
}

/// A fence whose lease expires a second sooner than a batch may take: too soon for a batch.
private struct ShortFence: WriteFence, CustomStringConvertible {
    func confirm(at now: Date) throws -> Date { now.addingTimeInterval(FleetReconciler.kernelCallBound - 1) }
    var description: String { "a lease \(Int(FleetReconciler.kernelCallBound - 1)) s from expiry" }
}

/// A fence confirmed once, for the pass, and lost from then on: another controller took the
/// lease while the pass was about to send.
private final class LosingFence: WriteFence, Sendable {
    struct Lost: Error, CustomStringConvertible {
        var description: String { "another controller took the lease" }
    }
    private let count = Mutex(0)
    var confirmations: Int { count.withLock { $0 } }

    func confirm(at now: Date) throws -> Date {
        let number = count.withLock { count -> Int in
            count += 1
            return count
        }
        guard number == 1 else { throw Lost() }
        return now.addingTimeInterval(15)
    }
}
