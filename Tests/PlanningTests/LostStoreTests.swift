import DesiredState
import Foundation
import Kernel
import KernelSimulator
import MeshwardCore
import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

/// The state directory is lost while the kernels keep what Meshward installed: a controller with
/// an empty Store treats the owned objects it has no record of as stale. It installs new
/// generations make-before-break (continuity is checked after every operation of every
/// interleaving) and removes the stale objects once nothing uses them, also over runs that do not
/// wait for the drain.
@Suite("Lost state directory")
struct LostStoreTests {
    @Test(
        "owned objects without a record are replaced make-before-break",
        arguments: [
            ("new SPIs meet the stale ones", UInt32(0xFFFF_FFFF)), ("new SPIs differ", UInt32(0x8000_0000)),
        ])
    func lostStore(_ name: String, firstSPI: UInt32) async throws {
        let harness = ContinuityHarness(seed: 5)
        let intent = try FleetSpec.threeTier.compile()
        try await harness.converge(intent)
        let before = harness.records.mapValues { $0.generations.map(\.spi) }

        harness.forgetStore(firstSPI: firstSPI)
        let passes = try await harness.converge(intent)
        #expect(harness.violations == [], "\(name)")
        try harness.assertConverged(intent)
        for (channel, spis) in before {
            let now = harness.records[channel]?.generations.filter { $0.state == .active }.map(\.spi) ?? []
            #expect(Set(now).isDisjoint(with: spis), "\(channel) went back to an SPI of the lost store")
        }
        print("lost store (\(name)): converged in \(passes) passes, \(harness.checkedOperations) operations checked")
    }

    @Test("SAs a lost Store left behind are deleted by runs that do not wait for the drain")
    func unaccountedSAsDrainAcrossRuns() async throws {
        let fixture = PlannerFixture()
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        fixture.loseStore()
        var outcome: ConvergeReport.Outcome?
        for _ in 0..<6 {
            // Each run is a new controller process (as `apply --no-wait` or a `reconcile --once` is).
            try await fixture.restartController()
            outcome = try await fixture.apply(intent, waitForDrain: false)
            if outcome == .converged { break }
            fixture.clock.advance(by: 3)
        }
        #expect(outcome == .converged)
        #expect(try fixture.missingExpectedObjects(intent) == [])
        let held = try ["n1", "n2"].map { try fixture.observe($0).securityAssociations.count }.reduce(0, +)
        #expect(held == 4, "only the two channels' new SAs remain on the two nodes")
    }
}
