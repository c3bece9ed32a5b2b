import Agent
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Synchronization
import Testing

@testable import Controller
@testable import Reconciler
@testable import ReconcilerTestSupport

/// A reconcile loop over watched agents (design.md §12): drift wakes it whatever its interval,
/// and the cycle drift starts plans on the cache and reads afresh only what it repairs.
@Suite("A loop over watched agents", .serialized)
struct WatchLoopTests {
    @Test(
        "a node wiped out of band is restored by a loop whose interval is 10 minutes without the clock moving, reading afresh only the wiped node and its peer",
        .timeLimit(.minutes(3)))
    func driftWakesTheLoop() async throws {
        let fleet = try await FleetSessionTests.AgentFleet(count: 4)
        let events = LoopEvents()
        let clock = ManualClock(Date(), sleeps: .wait, onChange: { events.changed() })
        let controller = MeshwardController(stateDirectory: fleet.state, logger: FleetSessionTests.quiet, clock: clock)
        let documents = Mutex<[ApplyDocument]>([])
        let service = ReconcileService(
            controller: controller, specPaths: [fleet.spec.path], interval: .seconds(600), once: false,
            reload: ReloadTrigger(), clock: clock, logger: FleetSessionTests.quiet,
            onCycle: { result in
                if case .success(let document) = result { documents.withLock { $0.append(document) } }
                events.changed()
            })
        let running = Task { try await service.run() }
        let watch = controller.context.session.watch
        // The first cycle converges the fleet; then every stream is live and every copy current.
        await events.wait {
            documents.withLock { $0.first?.outcome == .converged } && watch.summary.live == 4
                && fleet.nodes.allSatisfy { watch.cachedObservation(of: $0) != nil }
        }
        let start = clock.now()
        let cyclesBefore = documents.withLock { $0.count }
        let before = try fleet.fleet.withState { try $0.observe(node: "n0", reqid: .meshwardDefault) }
        let observesBefore = fleet.requests.mapValues { $0.filter { $0 == .observe }.count }

        fleet.fleet.wipe(node: "n0")
        await events.wait {
            documents.withLock { $0.dropFirst(cyclesBefore).contains { $0.operations > 0 } }
        }
        let after = try fleet.fleet.withState { try $0.observe(node: "n0", reqid: .meshwardDefault) }
        #expect(clock.now() == start, "the clock moved: the interval, not the drift, started the cycle")
        #expect(after.policies.count == before.policies.count)
        #expect(after.securityAssociations.count == before.securityAssociations.count)
        let observesAfter = fleet.requests.mapValues { $0.filter { $0 == .observe }.count }
        for node in ["n2", "n3"] {
            #expect(
                observesAfter[node] == observesBefore[node], "\(node) was read: \(observesBefore) -> \(observesAfter)")
        }
        for node in ["n0", "n1"] {
            #expect(observesAfter[node] != observesBefore[node], "\(node) was not read afresh")
        }
        #expect(watch.summary.changes > 0)
        print(
            "drift on n0 repaired without the clock moving in \(documents.withLock { $0.count } - cyclesBefore) "
                + "cycle(s); observes \(observesBefore) -> \(observesAfter)")

        running.cancel()
        _ = await running.result
        await controller.close()
        await fleet.stop()
    }
}
