import Controller
import DesiredState
import Foundation
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Reconciler
import Store

/// The cost of one reconcile cycle as the controller runs it (`MeshwardController.apply`: the
/// Store and its lease, the settings, the passes over every agent, the ready marks, the
/// contacts), on a fleet behind the children's agents (at most `agentsPerChild` a child) that the
/// controller installed itself: every cycle of a steady fleet sends nothing.
///
/// Measured two ways in one run: with the controller's session keeping one connection per
/// agent across cycles, and with the session closed after every cycle, so that each cycle dials
/// and shakes hands with every agent again (what every cycle did before the controller kept a
/// session per process).
struct ReconcileCycleMeasurement {
    let text: String
    let intent: FleetIntent
    let cycles: Int
    let agentsPerChild: Int

    struct Figures {
        var install: Duration
        var kept: (wall: Duration, cpu: Duration)
        var keptConnections: Int
        var anew: (wall: Duration, cpu: Duration)
        var anewConnections: Int
        /// The controller's open files after the cycles with connections kept (one connection
        /// per agent, the Store's files); nil where there is no `/proc`.
        var openFiles: Int?
    }

    func run() async throws -> Figures {
        let logger = Logger(label: "meshward.bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let directory = try FleetGenerator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let state = directory.appendingPathComponent("state").path
        let store = try StateStore.open(directory: state, masterKeyPath: nil, logger: logger)
        let ca = try await ClusterCredentials(store: store, cluster: intent.cluster).certificateAuthority(now: Date())
        let fleet = SimulatedFleet()
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
        let children = try AgentsChildren.start(
            fleet: fleet, cluster: intent.cluster, ca: ca, agentsPerChild: agentsPerChild)
        defer { children.stop() }
        let spec = directory.appendingPathComponent("fleet.yaml")
        try FleetGenerator.withEndpoints(text, ports: children.ports).write(to: spec, atomically: true, encoding: .utf8)
        let agentIntent = try MeshwardController.loadSpec([spec.path]).intent

        // A failure here with a child dead is reported with the child's exit status and nodes.
        let figures = try await children.reportingDeaths {
            let controller = MeshwardController(stateDirectory: state, logger: logger, clock: ManualClock(Date()))
            let installed = try await measureBoth {
                do {
                    return try await controller.apply(agentIntent, source: spec.path, waitForDrain: true)
                } catch {
                    throw BenchFailure("the install over agents failed: \(error)")
                }
            }
            guard installed.result.outcome == .converged, installed.result.unreachable.isEmpty else {
                throw BenchFailure(
                    "the install over agents ended \(installed.result.outcome.rawValue), "
                        + "\(installed.result.unreachable.count) nodes unreachable: "
                        + "\(installed.result.unreachable.first.map { "\($0.node): \($0.reason)" } ?? "")")
            }

            func cycle(closing: Bool) async throws -> (wall: Duration, cpu: Duration) {
                var samples: [(Duration, Duration)] = []
                for _ in 1...cycles {
                    let measured = try await measureBoth {
                        let document = try await controller.apply(
                            agentIntent, source: spec.path, waitForDrain: false, command: "reconcile")
                        if closing { await controller.close() }
                        return document
                    }
                    guard measured.result.outcome == .converged, measured.result.operations == 0,
                        measured.result.unreachable.isEmpty
                    else {
                        throw BenchFailure(
                            "a steady cycle ended \(measured.result.outcome.rawValue) with "
                                + "\(measured.result.operations) operations, \(measured.result.unreachable.count) unreachable"
                        )
                    }
                    samples.append((measured.wall, measured.cpu))
                }
                let sorted = samples.sorted { $0.0 < $1.0 }
                return sorted[sorted.count / 2]
            }

            let before = controller.agentConnectionsOpened
            let kept = try await cycle(closing: false)
            let keptConnections = controller.agentConnectionsOpened - before
            let openFiles = OpenFiles.count()
            await controller.close()
            let closed = controller.agentConnectionsOpened
            let anew = try await cycle(closing: true)
            let anewConnections = controller.agentConnectionsOpened - closed
            return Figures(
                install: installed.wall, kept: kept, keptConnections: keptConnections, anew: anew,
                anewConnections: anewConnections, openFiles: openFiles)
        }
        _ = try children.finish()
        return figures
    }
}
