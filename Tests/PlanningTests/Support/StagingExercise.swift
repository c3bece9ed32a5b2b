import Foundation
import MeshwardCore

@testable import Reconciler
@testable import ReconcilerTestSupport

/// A fixed history that takes channels through every kind of step the planner stages: creation,
/// a rekey of everything (with its drain), a re-imaged node's restore, a flow removed and a port
/// added, and a node leaving. Each step is converged with continuity checked in every reachable
/// state; a step that does not converge (a broken planner may not) is left where it stopped and
/// the next one goes on.
///
/// A test that a staging rule is needed switches it off (`FleetPlanner.Rule`) and expects
/// violations:
/// ```swift
/// let harness = ContinuityHarness(seed: 3, rules: [.someRule])
/// await StagingExercise.run(harness)
/// #expect(!harness.violations.isEmpty)
/// ```
enum StagingExercise {
    /// The spec the exercise starts from: four nodes, selectors with and without ports, both
    /// address families, a node with two flows.
    static var spec: FleetSpec { ContinuityTests.fourNodes }

    /// Runs the history on `harness` from an empty fleet; returns how many steps converged.
    @discardableResult
    static func run(_ harness: ContinuityHarness, drain: String = "5s") async -> Int {
        var spec = Self.spec
        spec.drain = drain
        var converged = 0
        func step(_ spec: FleetSpec, requests: [ChannelID: Date] = [:]) async {
            guard let intent = try? spec.compile() else { return }
            if (try? await harness.converge(intent, rekeyRequests: requests)) != nil { converged += 1 }
        }
        await step(spec)
        harness.clock.advance(by: 1)
        await step(
            spec, requests: Dictionary(uniqueKeysWithValues: harness.records.keys.map { ($0, harness.clock.now()) }))
        harness.wipe("n2")
        await step(spec)
        spec.flows.removeAll { $0.name == "app-db" }
        spec.flows[0].ports.append("udp/53")
        await step(spec)
        spec.nodes.removeAll { $0.name == "n4" }
        spec.flows.removeAll { $0.from == "n4" || $0.to == "n4" }
        await step(spec)
        return converged
    }
}
