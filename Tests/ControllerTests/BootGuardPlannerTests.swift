import Agent
import DesiredState
import Foundation
import Kernel
import KernelSimulator
import MeshwardCore
import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

/// The planner meets the guard policies an agent installs at start on a rebooted host: owned
/// outbound policies that are wrong (no pinned SPI). It replaces them make-before-break.
@Suite("Planner and the boot guard")
struct BootGuardPlannerTests {
    /// A converged pair whose n1 rebooted and whose agent installed its guards (as it derived
    /// them from n1's kernel before the reboot). Returns the guards.
    static func rebootedPair(_ fixture: PlannerFixture, _ intent: FleetIntent) async throws -> [SecurityPolicy] {
        #expect(try await fixture.apply(intent) == .converged)
        let entries = BootGuard.derive(from: try fixture.observe("n1"), reqid: fixture.reqid, previous: [])
        #expect(!entries.isEmpty)
        fixture.fleet.wipe(node: "n1")
        let guards = entries.map(\.guardPolicy)
        fixture.fleet.withState { state in
            for policy in guards { #expect(state.apply(.addPolicy(policy), on: "n1") == .applied) }
        }
        return guards
    }

    @Test(
        "a guard policy is replaced by UPDPOLICY pinning the new generation, after both SAs are in place, with no plaintext after any pass"
    )
    func guardReplacedMakeBeforeBreak() async throws {
        let fixture = PlannerFixture()
        let intent = try FleetSpec.pair().compile()
        let guards = try await Self.rebootedPair(fixture, intent)
        let n2 = try #require(IPAddress("198.18.0.12"))
        let appliedBefore = fixture.applied.count
        for _ in 0..<12 {
            fixture.clock.advance(by: 1)
            let report = try await fixture.pass(intent)
            #expect(report.failures.isEmpty, "\(report.failures.map(\.planned))")
            #expect(report.plan.blocked.isEmpty, "\(report.plan.blocked)")
            let outcome = fixture.send(from: "n1", to: n2)
            #expect(outcome != .deliveredPlaintext, "pass \(report.number): n1 -> n2 \(outcome)")
            if case .dropped(let counter) = outcome {
                #expect(counter == "XfrmOutNoStates", "pass \(report.number): dropped on the way in (\(counter))")
            }
            if report.plan.isConverged { break }
        }
        #expect(try fixture.missingExpectedObjects(intent) == [])
        let operations = fixture.applied.dropFirst(appliedBefore)
        for guardPolicy in guards {
            let touching = operations.filter { entry in
                switch entry.planned.operation {
                case .addPolicy(let policy), .updatePolicy(let policy): policy.identifier == guardPolicy.identifier
                case .deletePolicy(let id): id == guardPolicy.identifier
                default: false
                }
            }
            // One replacement, never a delete or an exclusive add over it.
            #expect(touching.count == 1, "\(touching.map(\.planned))")
            let replacement = try #require(touching.first)
            guard case .updatePolicy(let policy) = replacement.planned.operation, let spi = policy.template.spi else {
                Issue.record("the guard was not replaced by UPDPOLICY pinning an SPI: \(replacement.planned)")
                continue
            }
            let position = try #require(operations.firstIndex { $0.planned == replacement.planned })
            let installed = operations[..<position].filter { entry in
                if case .addSA(let sa) = entry.planned.operation { return sa.spi == spi }
                return false
            }
            #expect(Set(installed.map(\.planned.node)) == ["n1", "n2"], "the SAs of \(spi.hex) came first")
        }
    }

    @Test("a guard policy whose channel the spec now has as permissive is replaced and nothing stays blocked")
    func guardOfPermissiveChannelReplaced() async throws {
        let fixture = PlannerFixture()
        let guards = try await Self.rebootedPair(fixture, try FleetSpec.pair().compile())
        var spec = FleetSpec.pair()
        spec.enforcement = "permissive"
        let intent = try spec.compile()
        #expect(try await fixture.apply(intent) == .converged)
        #expect(try fixture.missingExpectedObjects(intent) == [])
        let outbound = try fixture.observe("n1").policies.filter { $0.direction == .outbound }
        #expect(Set(outbound.map(\.identifier)) == Set(guards.map(\.identifier)))
        #expect(outbound.allSatisfy { !BootGuard.isGuard($0) }, "\(outbound)")
    }

    @Test("a guard policy whose channel left the spec is removed after the receiver stops requiring ESP")
    func guardOfRemovedChannelRemoved() async throws {
        let fixture = PlannerFixture()
        let guards = try await Self.rebootedPair(fixture, try FleetSpec.pair().compile())
        let intent = try FleetSpec.pair(flows: false).compile()
        let appliedBefore = fixture.applied.count
        #expect(try await fixture.apply(intent) == .converged)
        #expect(try fixture.observe("n1").policies.isEmpty)
        #expect(try fixture.observe("n2").policies.isEmpty)
        let operations = Array(fixture.applied.dropFirst(appliedBefore))
        for guardPolicy in guards {
            let deleted = try #require(
                operations.firstIndex { $0.planned.operation == .deletePolicy(guardPolicy.identifier) },
                "the guard was not deleted")
            let relaxed = operations.firstIndex { entry in
                guard entry.planned.node == "n2", case .updatePolicy(let policy) = entry.planned.operation else {
                    return false
                }
                return policy.selector == guardPolicy.selector && policy.direction == .inbound
                    && policy.template.isOptional
            }
            #expect(relaxed.map { $0 < deleted } == true, "n2 still required ESP when the guard went")
        }
    }
}
