import AgentTestSupport
import Foundation
import Identity
import Kernel
import KernelSimulator
import Logging
import MeshwardCore

@testable import Controller
@testable import ReconcilerTestSupport

/// A continuity harness's fleet behind in-process agents, one per node (so that one can be
/// restarted on its port), and the controller's watches of them.
///
/// Everything the tests wait for is an event of `events`: a message a watch took in, a stream
/// that ended, a timer of the harness's clock that started or stopped waiting (a stream's
/// backoff), a message held by a `WatchDelay`.
final class WatchedAgents {
    let harness: ContinuityHarness
    let nodes: [String]
    let kernels: AgentFleetKernels
    let events: LoopEvents
    /// The positions the latest watch's copies stood at after each message and each ending.
    let trail = WatchTrail()
    private let ca: ClusterCA
    private let ports: [String: Int]
    private var agents: [String: InProcessAgents]

    /// A harness seeded with `seed` whose fleet's `nodes` are each served by an agent, and
    /// whose passes go through them.
    init(seed: UInt64, nodes: [String]) async throws {
        let events = LoopEvents()
        self.events = events
        harness = ContinuityHarness(seed: seed, onClockChange: { events.changed() })
        self.nodes = nodes
        ca = try ClusterCA.create(cluster: "test", now: Date())
        var agents: [String: InProcessAgents] = [:]
        for node in nodes {
            agents[node] = try await InProcessAgents.start(
                nodes: [node], connector: SimulatedConnector(fleet: harness.fleet), ca: ca)
        }
        self.agents = agents
        ports = agents.compactMapValues { $0.ports.values.first }
        guard let first = nodes.first.flatMap({ agents[$0] }) else {
            throw HarnessError(message: "a watched fleet needs at least one node")
        }
        kernels = AgentFleetKernels(
            fleet: harness.fleet, agents: first, restarted: nodes.dropFirst().compactMap { agents[$0] })
        harness.routeThroughAgents(kernels)
    }

    /// A new controller's watch of every agent, which the harness's passes plan on from now.
    ///
    /// - Parameters:
    ///   - delay: holds back messages of the streams (each opened through a `DelayedWatchKernel`).
    ///   - readsAfreshBeforeActing: false switches the rule off (negative controls only).
    func watch(delaying delay: WatchDelay? = nil, readsAfreshBeforeActing: Bool = true) -> FleetWatch {
        let events = events
        let kernels = kernels
        let trail = trail
        let watch = FleetWatch(
            clock: harness.clock, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            observer: { node in
                trail.note(node)
                events.changed()
            })
        trail.follow(watch)
        watch.follow(Set(nodes)) { node in
            let kernel = try await kernels.kernel(for: node)
            guard let delay else { return kernel }
            return DelayedWatchKernel(inner: kernel, delay: delay)
        }
        harness.routeThroughAgents(kernels, cache: watch, readsAfreshBeforeActing: readsAfreshBeforeActing)
        return watch
    }

    /// The simulated kernel's watch model of `node` (the one its agent serves).
    func model(of node: String) throws -> KernelWatchModel {
        try harness.fleet.startWatching(node: node, reqid: .meshwardDefault)
    }

    /// Whether `watch`'s copy of every node of `fleet` stands at its kernel's position, with a
    /// stream open.
    private static func caughtUp(_ watch: FleetWatch, fleet: SimulatedFleet) -> Bool {
        fleet.state.nodes.keys.allSatisfy { node in
            guard let model = try? fleet.startWatching(node: node, reqid: .meshwardDefault) else { return false }
            return watch.position(of: node) == model.position && model.streamCount > 0
        }
    }

    /// Waits until `watch`'s copy of every node the fleet has stands at its simulated kernel's
    /// position (each message the watch takes in is an event).
    func waitUntilCaughtUp(_ watch: FleetWatch) async throws {
        let fleet = harness.fleet
        await events.wait { Self.caughtUp(watch, fleet: fleet) }
        guard Self.caughtUp(watch, fleet: fleet) else {
            throw HarnessError(message: "the watch did not catch up (the test's time limit)")
        }
    }

    /// Waits until a stream of the watch waits out its backoff on the harness's clock (it
    /// ended on an error and opens again once the clock reaches the backoff's end).
    func waitForBackoff() async throws {
        let clock = harness.clock
        await events.wait { clock.watching > 0 }
        guard clock.watching > 0 else {
            throw HarnessError(message: "no stream of the watch backed off (the test's time limit)")
        }
    }

    /// Brings back the streams a fault ended: each time a stream waits out its backoff, moves
    /// the harness's clock to the end of that wait, until the copy of every node stands at its
    /// kernel's position with its stream open again. Only between passes: the clock has no
    /// other timer then.
    ///
    /// A stream with nothing to replay sends nothing when it opens again: the caller makes sure
    /// the copy is behind its kernel (or of another epoch) first, so that its return is seen.
    func resumeAfterBackoff(_ watch: FleetWatch) async throws {
        let clock = harness.clock
        let fleet = harness.fleet
        while true {
            await events.wait { Self.caughtUp(watch, fleet: fleet) || clock.watching > 0 }
            if Self.caughtUp(watch, fleet: fleet) { return }
            if Task.isCancelled {
                throw HarnessError(message: "the watch's streams did not come back (the test's time limit)")
            }
            guard let end = clock.nextWatchDeadline else { continue }
            clock.advance(by: max(0, end.timeIntervalSince(clock.now())))
        }
    }

    /// `node`'s agent stops (its streams end) and starts again on its port, as a new process:
    /// its watch model starts anew, with a new epoch. The host is the same, and so is its boot ID.
    func restartAgent(_ node: String) async throws {
        guard let old = agents[node], let port = ports[node] else {
            throw HarnessError(message: "no agent serves \(node)")
        }
        await old.stop()
        harness.fleet.restartWatching(node: node)
        agents[node] = try await InProcessAgents.start(
            nodes: [node], connector: SimulatedConnector(fleet: harness.fleet), ca: ca, ports: [node: port])
    }

    /// Stops every agent and waits until each has returned.
    func stop() async {
        for agent in agents.values { await agent.stop() }
    }
}
