import Foundation
import Kernel
import MeshwardCore
import MeshwardTestSupport
import Testing

@testable import KernelSimulator
@testable import Reconciler
@testable import ReconcilerTestSupport

/// A run says converged only when every object of every channel is in place, and says it
/// stalled when what is left is held back.
@Suite("A run reports converged only with every object in place")
struct ConvergedRunTests {
    /// The general invariant: whatever happens between runs, a run that says converged has every
    /// object of every channel in place. Sampled: random histories of rekeys, re-addressing and
    /// cipher changes interrupted after a random number of passes, with these seeds.
    @Test(
        "a run reports converged only with every expected object in place (sampled histories, seeds 1-12)",
        arguments: 1...12)
    func convergedMeansComplete(seed: UInt64) async throws {
        var random = SeededRandom(seed: seed)
        let fixture = PlannerFixture()
        var spec = FleetSpec(
            nodes: (1...3).map { FleetSpec.node($0, ipv6: false) },
            flows: [
                .init(name: "a", from: "n1", to: "n2", ports: [], cipher: nil),
                .init(name: "b", from: "n2", to: "n3", ports: ["tcp/8080"], cipher: nil),
            ])
        var nextAddress = 100
        for event in 0..<8 {
            var requests: [ChannelID: Date] = [:]
            switch random.next() % 3 {
            case 0:
                let node = Int(random.next() % 3)
                spec.nodes[node].ipv4 = "198.18.1.\(nextAddress)"
                nextAddress += 1
            case 1:
                spec.cipher = spec.cipher == "aes-gcm-256" ? "chacha20-poly1305" : "aes-gcm-256"
            default:
                fixture.clock.advance(by: 1)
                for id in fixture.records.keys where random.next() % 2 == 0 { requests[id] = fixture.clock.now() }
            }
            let intent = try spec.compile()
            // Interrupted: a few passes only, then the next change arrives.
            for _ in 0..<Int(random.next() % 4) {
                fixture.clock.advance(by: 2)
                try await fixture.pass(intent, rekeyRequests: requests)
            }
            if event % 2 == 1 || event == 7 {
                let outcome = try await fixture.apply(intent, rekeyRequests: requests)
                #expect(outcome == .converged, "seed \(seed), event \(event)")
                #expect(try fixture.missingExpectedObjects(intent) == [], "seed \(seed), event \(event): \(spec)")
            }
        }
    }

    @Test("a pass whose only remaining operation is held back is not converged, and a run says it stalled")
    func heldOperationIsNotConverged() async throws {
        let fixture = PlannerFixture()
        let intent = try FleetSpec.pair().compile()
        #expect(try await fixture.apply(intent) == .converged)
        // n1 loses its outbound policy while n2, though it answers, has no endpoint: the policy
        // can never be sent, and nothing else is left to do.
        let policy = try #require(try fixture.observe("n1").policies.first { $0.direction == .outbound })
        _ = fixture.fleet.withState { $0.apply(.deletePolicy(policy.identifier), on: "n1") }
        let input = PlanningInput(
            intent: intent, channels: fixture.records,
            observations: ["n1": try fixture.observe("n1"), "n2": try fixture.observe("n2")], knownNodes: ["n1"],
            reqid: fixture.reqid, now: fixture.clock.now())
        let plan = FleetPlanner().plan(input)
        #expect(plan.operationCount == 0)
        #expect(plan.heldCount > 0)
        #expect(!plan.isConverged)

        let reconciler = FleetReconciler(
            store: ScratchGenerationStore(channels: fixture.records),
            kernels: PartlyKnownKernels(fleet: fixture.fleet, known: ["n1"]), reqid: fixture.reqid,
            clock: fixture.clock, logger: .init(label: "test"))
        await #expect(throws: ReconcileError.self) {
            _ = try await reconciler.converge(intent: intent, waitForDrain: true)
        }
    }
}

/// The simulated fleet's kernels, with only `known` reachable in principle (others answer but
/// have no endpoint).
private final class PartlyKnownKernels: FleetKernels {
    let fleet: SimulatedFleet
    let knownNodes: Set<String>

    init(fleet: SimulatedFleet, known: Set<String>) {
        self.fleet = fleet
        knownNodes = known
    }

    func kernel(for node: String) async throws -> any NodeKernel { fleet.kernel(for: node, reqid: .meshwardDefault) }
    func persist() throws {}
}
