import Foundation
import Kernel
import MeshwardCore
import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

/// The rekey that docs/architecture.md draws, pass by pass: what each pass sends, to which node,
/// and what it waits for.
@Suite("The documented rekey")
struct RekeyGoldenTests {
    @Test("a rekey of n1->n2 goes receiver SA, sender SA, switch, old sender SA, drain, old receiver SA")
    func rekeyPassByPass() async throws {
        let fixture = PlannerFixture()
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        let old = try #require(fixture.records[PairFleet.forward]?.active)
        fixture.clock.advance(by: 1)
        let requests = [PairFleet.forward: fixture.clock.now()]
        let start = fixture.reports.count

        #expect(try await fixture.apply(intent, rekeyRequests: requests) == .converged)
        let passes = fixture.reports.dropFirst(start).map { report in
            report.results.map { "\($0.planned.node) \($0.planned.operation.kind)" }
        }
        let new = try #require(fixture.records[PairFleet.forward]?.active)
        #expect(new.number == old.number + 1)
        #expect(
            passes == [
                ["n2 add-sa"],  // 1: the receiver accepts both generations
                ["n1 add-sa"],  // 2: the sender's new SA, unused: its policy still pins the old one
                ["n1 update-policy"],  // 3: the switch
                ["n1 delete-sa"],  // 4: the old outbound SA; this pass sees the switch: the drain starts
                [],  // 5: the old inbound SA waits for the drain
                ["n2 delete-sa"],  // 6: drained, its counter unchanged: the old inbound SA goes
                [],  // 7: generation 1 is gone from both kernels: retired
                [],  // 8: nothing left
            ])
        let waits = fixture.reports.dropFirst(start).map(\.plan.nextDeadline)
        let switchSeen = try #require(fixture.reports.dropFirst(start + 3).first?.startedAt)
        #expect(waits[4] == switchSeen.addingTimeInterval(5), "pass 5 waits for the drain from the switch")
    }
}
