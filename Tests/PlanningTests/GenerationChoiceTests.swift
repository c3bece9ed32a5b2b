import Foundation
import Kernel
import MeshwardCore
import Testing

@testable import KernelSimulator
@testable import Reconciler
@testable import ReconcilerTestSupport

/// Which generation a channel moves to when its receiver moves, when a switch was sent or
/// refused, and when an SA was tampered with; each scenario reproduced through the simulated fleet.
@Suite("Which generation a channel moves to")
struct GenerationChoiceTests {
    @Test("a receiver re-addressed while a generation is pending gets a new generation and stays encrypted")
    func readdressedWhilePending() async throws {
        let fixture = PlannerFixture()
        let before = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(before) == .converged)
        fixture.clock.advance(by: 1)
        try await fixture.pass(before, rekeyRequests: [PairFleet.forward: fixture.clock.now()])
        let stale = try #require(fixture.records[PairFleet.forward]?.pending, "the rekey left a pending generation")

        let after = try FleetSpec.pair(n2: "198.18.0.52").compile()
        #expect(try await fixture.apply(after) == .converged)
        #expect(try fixture.missingExpectedObjects(after) == [])
        let active = try #require(fixture.records[PairFleet.forward]?.active)
        #expect(active.destination == PairFleet.n2Moved)
        #expect(active.spi != stale.spi, "the pending generation for the old address was superseded")
        guard case .deliveredEncrypted(let spi) = fixture.send(from: "n1", to: PairFleet.n2Moved) else {
            Issue.record("n1 -> n2's new address is not encrypted: \(fixture.send(from: "n1", to: PairFleet.n2Moved))")
            return
        }
        #expect(spi == active.spi)
        for node in ["n1", "n2"] {
            let observation = try fixture.observe(node)
            #expect(
                !observation.securityAssociations.contains {
                    $0.source == PairFleet.n2 || $0.destination == PairFleet.n2
                })
            #expect(!observation.policies.contains { $0.selector.source.address == PairFleet.n2 })
            #expect(!observation.policies.contains { $0.selector.destination.address == PairFleet.n2 })
        }
    }

    @Test(
        "a switch recorded before sending; a sender that then loses state never gets that key again",
        arguments: [false, true])
    /// With `ruleOff` the rule is switched off and the test expects the failure (negative control).
    func switchedGenerationIsBurned(ruleOff: Bool) async throws {
        let fixture = PlannerFixture(rules: ruleOff ? [.installOnlyUnusedPending] : [])
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        fixture.clock.advance(by: 1)
        let requests = [PairFleet.forward: fixture.clock.now()]
        var burned: SPI?
        for number in 1...6 {
            let prepared = try await fixture.reconciler.preparePass(
                number: number, intent: intent, records: &fixture.records, rekeyRequests: requests)
            let pending = fixture.records[PairFleet.forward]?.pending
            let switches = (prepared.plan.operations["n1"] ?? []).contains { planned in
                guard case .updatePolicy(let policy) = planned.operation else { return false }
                return policy.direction == .outbound && policy.template.spi == pending?.spi
            }
            if switches {
                // On record before any kernel sees it.
                let stored = try await fixture.store.loadChannels()[PairFleet.forward]?.pending
                #expect(stored?.switchSentAt != nil, "the switch is in the Store before it is sent")
                burned = pending?.spi
                _ = try await fixture.reconciler.execute(prepared)
                break
            }
            _ = try await fixture.reconciler.execute(prepared)
        }
        let used = try #require(burned, "a pass sent the switch")

        // The sender reboots before any observation saw the switch.
        fixture.fleet.wipe(node: "n1")
        let appliedBefore = fixture.applied.count
        #expect(try await fixture.apply(intent) == .converged)
        let reinstalled = fixture.applied.dropFirst(appliedBefore).filter { entry in
            if case .addSA(let sa) = entry.planned.operation { return sa.spi == used }
            return false
        }
        if ruleOff {
            #expect(!reinstalled.isEmpty, "switching off the rule went unnoticed")
            return
        }
        #expect(reinstalled.isEmpty, "the used generation's SA was installed again: \(reinstalled.map(\.planned))")
        #expect(fixture.records[PairFleet.forward]?.active?.spi != used)
        #expect(try fixture.missingExpectedObjects(intent) == [])
    }

    @Test("a switch the kernel refused is retried with the same generation while its SAs stay")
    func refusedSwitchIsRetried() async throws {
        let fixture = PlannerFixture()
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        fixture.clock.advance(by: 1)
        let requests = [PairFleet.forward: fixture.clock.now()]
        // Pass 1 installs the inbound SA, pass 2 the outbound one; pass 3 sends the switch.
        try await fixture.pass(intent, rekeyRequests: requests)
        try await fixture.pass(intent, rekeyRequests: requests)
        let pending = try #require(fixture.records[PairFleet.forward]?.pending)
        fixture.fleet.failOperation(on: "n1", nth: 1, errno: EINVAL)
        let refused = try await fixture.pass(intent, rekeyRequests: requests)
        #expect(!refused.failures.isEmpty)
        #expect(try await fixture.apply(intent, rekeyRequests: requests) == .converged)
        #expect(fixture.records[PairFleet.forward]?.active?.spi == pending.spi)
    }

    @Test(
        "a tampered replay window or ESN flag is a key-mismatch rekey",
        arguments: ["replay window 0", "ESN off"])
    func tamperedReplaySettingsRekey(_ change: String) async throws {
        let fixture = PlannerFixture()
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        let old = try #require(fixture.records[PairFleet.forward]?.active)
        fixture.modifySA(on: "n2", SAIdentifier(destination: PairFleet.n2, spi: old.spi)) { sa in
            if change == "ESN off" { sa.extendedSequenceNumbers = false } else { sa.replayWindow = 0 }
        }
        let issuedBefore = fixture.reports.flatMap(\.issued).count
        #expect(try await fixture.apply(intent) == .converged)
        let issued = fixture.reports.flatMap(\.issued).dropFirst(issuedBefore)
        #expect(issued.map(\.channel) == [PairFleet.forward])
        #expect(issued.map(\.reason) == [.keyMismatch])
        #expect(try fixture.missingExpectedObjects(intent) == [])
    }
}
