import AgentTestSupport
import DesiredState
import KernelSimulator
import Logging
import Synchronization
import Testing

@testable import Controller
@testable import Reconciler
@testable import ReconcilerTestSupport

/// The crash suite once more with every node behind an in-process agent that the controller
/// watches (`FleetWatch`), every pass of both controllers planned on the watch's cache: a
/// controller killed at any point of a phase, and a new one whose watch starts from nothing
/// (every stream a snapshot) and dials the agents afresh, keep continuity around the crash,
/// send nothing to a node not read afresh in its pass, and converge.
@Suite("Crash continuity behind watched agents")
struct WatchedCrashContinuityTests {
    /// Every node behind an in-process agent; each controller (the first, and the one started
    /// after the crash) has a watch of its own, and the dead one's streams end with it.
    static func throughWatchedAgents(
        _ harness: ContinuityHarness, _ intent: FleetIntent
    ) async throws -> CrashContinuity.Route {
        let nodes = Set(intent.nodes.map(\.name))
        let agents = try await InProcessAgents.start(
            nodes: nodes.sorted(), connector: SimulatedConnector(fleet: harness.fleet))
        let watches = Mutex<[FleetWatch]>([])
        return CrashContinuity.Route(
            reroute: { harness in
                for watch in watches.withLock({ $0 }) { watch.stop() }
                let kernels = AgentFleetKernels(fleet: harness.fleet, agents: agents)
                let watch = FleetWatch(
                    clock: harness.clock, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
                watch.follow(nodes) { node in try await kernels.kernel(for: node) }
                watches.withLock { $0.append(watch) }
                harness.routeThroughAgents(kernels, cache: watch)
            },
            stop: {
                for watch in watches.withLock({ $0 }) { watch.stop() }
                await agents.stop()
            })
    }

    @Test(
        "with every node behind a watched agent and every pass planned on the watch's cache, killed before the first and after every operation of a phase, continuity holds around the crash and every operation goes to a node read afresh in its pass",
        .timeLimit(.minutes(5)), arguments: CrashContinuity.Phase.allCases)
    func everyCrashPoint(phase: CrashContinuity.Phase) async throws {
        let seed: UInt64 = phase == .creation ? 21 : 22
        let (total, _) = try await CrashContinuity.cleanRun(phase, seed: seed)
        #expect(total > 10)
        var plannedOnCache = try await CrashContinuity.crashAndRestart(
            phase, at: .beforeFirstOperation, seed: seed, through: Self.throughWatchedAgents, planningOnCache: true)
        for count in 1...total {
            plannedOnCache += try await CrashContinuity.crashAndRestart(
                phase, at: .afterApplied(count), seed: seed, through: Self.throughWatchedAgents,
                planningOnCache: true)
        }
        #expect(plannedOnCache > 0, "no pass planned on the watch's cache")
        print(
            "crash continuity behind watched agents, \(phase): killed before the first and after each of \(total) "
                + "operations; \(plannedOnCache) passes planned on the cache")
    }
}
