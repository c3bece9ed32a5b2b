import AgentTestSupport
import DesiredState
import Foundation
import KernelSimulator
import Logging
import MeshwardCore
import Testing

@testable import Controller
@testable import Reconciler
@testable import ReconcilerTestSupport

/// The rekey that docs/architecture.md draws (`RekeyGoldenTests`), once more with both nodes
/// behind in-process agents that the controller watches, every pass planned on the watch's
/// cache: the same operations in the same passes, each sent to a node read afresh in its pass.
@Suite("The documented rekey behind watched agents")
struct WatchedRekeyGoldenTests {
    @Test(
        "behind watched agents, planned on the watch's cache, a rekey of n1->n2 still goes receiver SA, sender SA, switch, old sender SA, drain, old receiver SA, each operation to a node read afresh",
        .timeLimit(.minutes(2)))
    func rekeyPassByPass() async throws {
        let fixture = PlannerFixture()
        let intent = try FleetSpec.pair().compile()
        fixture.provision(intent)
        let nodes = Set(intent.nodes.map(\.name))
        let agents = try await InProcessAgents.start(
            nodes: nodes.sorted(), connector: SimulatedConnector(fleet: fixture.fleet))
        let kernels = AgentFleetKernels(fleet: fixture.fleet, agents: agents)
        let watch = FleetWatch(
            clock: fixture.clock, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        watch.follow(nodes) { node in try await kernels.kernel(for: node) }
        fixture.routeThroughAgents(kernels, cache: watch)
        defer {
            watch.stop()
            Task { await agents.stop() }
        }
        #expect(try await fixture.apply(intent, planningOnCache: true) == .converged)
        let forward = ChannelID(from: "n1", to: "n2", family: .ipv4)
        let old = try #require(fixture.records[forward]?.active)
        fixture.clock.advance(by: 1)
        let requests = [forward: fixture.clock.now()]
        let start = fixture.reports.count

        #expect(try await fixture.apply(intent, rekeyRequests: requests, planningOnCache: true) == .converged)
        let reports = Array(fixture.reports.dropFirst(start))
        let passes = reports.map { report in
            report.results.map { "\($0.planned.node) \($0.planned.operation.kind)" }
        }
        let new = try #require(fixture.records[forward]?.active)
        #expect(new.number == old.number + 1)
        #expect(
            passes == [
                ["n2 add-sa"], ["n1 add-sa"], ["n1 update-policy"], ["n1 delete-sa"], [], ["n2 delete-sa"], [], [],
            ])
        let sentUnread = reports.flatMap { report in
            report.results.map(\.planned).filter { !report.freshlyRead.contains($0.node) }.map { "\($0)" }
        }
        #expect(sentUnread == [])
        #expect(reports.contains { $0.freshlyRead.count < nodes.count }, "no pass planned on the watch's cache")
        let waits = reports.map(\.plan.nextDeadline)
        let switchSeen = try #require(reports.dropFirst(3).first?.startedAt)
        #expect(
            waits.count > 4 && waits[4] == switchSeen.addingTimeInterval(5),
            "pass 5 waits for the drain from the switch")
    }
}
