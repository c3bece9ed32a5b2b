import DesiredState
import Foundation
import Kernel
import MeshwardCore
import Testing

@testable import KernelSimulator
@testable import Reconciler
@testable import ReconcilerTestSupport

/// An old inbound SA drains from the sender's observed switch-away, not from the spec change,
/// and stays while its packet counter still moves (for at most ten drains).
@Suite("Old inbound SAs drain from the switch-away until their counter stops")
struct OldInboundSADrainTests {
    /// Runs single passes, the clock moving `step` seconds before each, until one has nothing to
    /// do and nothing to wait for (or `limit` passes).
    static func passes(
        _ fixture: PlannerFixture, _ intent: FleetIntent, step: TimeInterval, limit: Int = 80,
        rekeyRequests: [ChannelID: Date] = [:], before: (PlannerFixture) -> Void = { _ in }
    ) async throws {
        for _ in 0..<limit {
            fixture.clock.advance(by: step)
            before(fixture)
            let report = try await fixture.pass(intent, rekeyRequests: rekeyRequests)
            if report.plan.isConverged { return }
        }
        Issue.record("no convergence within \(limit) passes")
    }

    /// When the SA with `spi` left `node` (the start of the pass that deleted it).
    static func deletion(of spi: SPI, on node: String, in fixture: PlannerFixture) -> Date? {
        fixture.applied.first { entry in
            guard entry.planned.node == node, case .deleteSA(let id) = entry.planned.operation else { return false }
            return id.spi == spi
        }?.pass.startedAt
    }

    /// The start of the first pass whose observation shows no policy of `sender` pinning `spi`,
    /// after a pass that did.
    static func switchAway(from spi: SPI, sender: String, in fixture: PlannerFixture) -> Date? {
        var pinnedBefore = false
        for report in fixture.reports {
            guard let observation = report.observations[sender] else { continue }
            let pins = observation.policies.contains { $0.direction == .outbound && $0.template.spi == spi }
            if pins { pinnedBefore = true } else if pinnedBefore { return report.startedAt }
        }
        return nil
    }

    @Test("a re-addressed node's old inbound SA drains from the sender's switch-away")
    func oldAddressDrains() async throws {
        let fixture = PlannerFixture()
        #expect(try await fixture.apply(try FleetSpec.pair().compile()) == .converged)
        let old = try #require(fixture.records[PairFleet.forward]?.active)
        try await Self.passes(fixture, try FleetSpec.pair(n2: "198.18.0.52").compile(), step: 1)
        let stopped = try #require(Self.switchAway(from: old.spi, sender: "n1", in: fixture))
        let deleted = try #require(Self.deletion(of: old.spi, on: "n2", in: fixture), "the old inbound SA went")
        #expect(deleted.timeIntervalSince(stopped) >= 5, "deleted \(deleted.timeIntervalSince(stopped)) s after")
    }

    @Test("a removed channel's inbound SA drains from the sender's switch-away, not from the spec change")
    func removalDrainsFromSwitchAway() async throws {
        let fixture = PlannerFixture()
        #expect(try await fixture.apply(try FleetSpec.pair().compile()) == .converged)
        let old = try #require(fixture.records[PairFleet.forward]?.active)
        try await Self.passes(fixture, try FleetSpec.pair(flows: false).compile(), step: 2)
        let stopped = try #require(Self.switchAway(from: old.spi, sender: "n1", in: fixture))
        let deleted = try #require(Self.deletion(of: old.spi, on: "n2", in: fixture))
        #expect(deleted.timeIntervalSince(stopped) >= 5, "deleted \(deleted.timeIntervalSince(stopped)) s after")
        #expect(fixture.records[PairFleet.forward] == nil)
    }

    @Test(
        "an old inbound SA whose packet counter still moves stays past the drain until it stops",
        arguments: [false, true])
    /// With `ruleOff` the check is switched off and the test expects the failure (negative control).
    func movingCounterDelaysDeletion(ruleOff: Bool) async throws {
        let fixture = PlannerFixture(rules: ruleOff ? [.counterStopped] : [])
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        let old = try #require(fixture.records[PairFleet.forward]?.active)
        let id = SAIdentifier(destination: PairFleet.n2, spi: old.spi)
        fixture.clock.advance(by: 1)
        var lastBump: Date?
        var switchedAt: Date?
        try await Self.passes(
            fixture, intent, step: 1, rekeyRequests: [PairFleet.forward: fixture.clock.now()],
            before: { fixture in
                if switchedAt == nil,
                    let retiring = fixture.records[PairFleet.forward]?.generations.first(where: {
                        $0.number == old.number && $0.supersededAt != nil
                    })
                {
                    switchedAt = retiring.supersededAt
                }
                // Late packets keep arriving under the old SPI for 8 s after the switch.
                if let switchedAt, fixture.clock.now() < switchedAt.addingTimeInterval(8) {
                    fixture.modifySA(on: "n2", id) { $0.counters.packets += 3 }
                    lastBump = fixture.clock.now()
                }
            })
        let bumped = try #require(lastBump)
        let deleted = try #require(Self.deletion(of: old.spi, on: "n2", in: fixture))
        if ruleOff {
            #expect(deleted <= bumped, "switching off the counter check went unnoticed")
            return
        }
        #expect(deleted > bumped, "deleted at \(deleted), the counter last moved at \(bumped)")
        #expect(fixture.reports.allSatisfy { $0.plan.drainsCutShort.isEmpty })
    }

    @Test("an old inbound SA whose counter never stops goes after ten drains, and says so")
    func movingCounterIsBounded() async throws {
        let fixture = PlannerFixture()
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        let old = try #require(fixture.records[PairFleet.forward]?.active)
        let id = SAIdentifier(destination: PairFleet.n2, spi: old.spi)
        fixture.clock.advance(by: 1)
        try await Self.passes(
            fixture, intent, step: 1, rekeyRequests: [PairFleet.forward: fixture.clock.now()],
            before: { fixture in fixture.modifySA(on: "n2", id) { $0.counters.packets += 1 } })
        let switched = try #require(Self.switchAway(from: old.spi, sender: "n1", in: fixture))
        let deleted = try #require(Self.deletion(of: old.spi, on: "n2", in: fixture))
        #expect(deleted.timeIntervalSince(switched) >= 50)
        #expect(deleted.timeIntervalSince(switched) <= 52)
        #expect(fixture.reports.contains { $0.plan.drainsCutShort == [id] })
    }
}
