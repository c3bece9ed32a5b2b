import DesiredState
import Foundation
import MeshwardCore
import Testing

@testable import Reconciler

/// The crash suites' run: the controller dies in the middle of a phase and a new one takes over
/// the same Store and kernels; continuity is checked in every state the dead controller's passes
/// could reach and in every state the new controller's passes can reach, and the fleet converges.
enum CrashContinuity {
    enum Phase: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case creation, rekey
        var testDescription: String { rawValue }
    }

    /// What the nodes are reached through instead of the fleet's own kernels (in-process agents
    /// serving it): `reroute` puts a harness behind it, again after the crash so that the new
    /// controller dials afresh, as a new process would; `stop` ends it.
    struct Route {
        let reroute: (ContinuityHarness) -> Void
        let stop: () async -> Void
    }

    /// Starts a `Route` for a provisioned harness and the intent it runs.
    typealias RouteStart = (ContinuityHarness, FleetIntent) async throws -> Route

    /// A harness at the start of `phase` on the three-tier fleet, with the phase's rekey requests.
    /// With `route`, every node is reached through what it starts; the caller stops it.
    static func start(
        _ phase: Phase, seed: UInt64, through route: RouteStart? = nil
    ) async throws -> (
        ContinuityHarness, FleetIntent, [ChannelID: Date], Route?
    ) {
        let harness = ContinuityHarness(seed: seed)
        let intent = try FleetSpec.threeTier.compile()
        harness.provision(intent)
        var started: Route?
        if let route {
            let routed = try await route(harness, intent)
            routed.reroute(harness)
            started = routed
        }
        var requests: [ChannelID: Date] = [:]
        if phase == .rekey {
            try await harness.converge(intent)
            harness.clock.advance(by: 1)
            requests = Dictionary(uniqueKeysWithValues: harness.records.keys.map { ($0, harness.clock.now()) })
        }
        return (harness, intent, requests, started)
    }

    /// Dies at `point`, restarts, converges; every state on the way is checked. With `route`, the
    /// new controller reaches the nodes through it again. `planningOnCache`: every pass of both
    /// controllers plans on the cache the route gives, and no operation may go to a node its
    /// pass did not read afresh. Returns how many passes of the two planned on the cache (read
    /// fewer nodes than the fleet has).
    @discardableResult
    static func crashAndRestart(
        _ phase: Phase, at point: CrashPoint, seed: UInt64, through route: RouteStart? = nil,
        planningOnCache: Bool = false
    ) async throws -> Int {
        let (harness, intent, requests, started) = try await start(phase, seed: seed, through: route)
        do {
            let plannedOnCache = try await crashAndRestart(
                phase, at: point, harness: harness, intent: intent, requests: requests, route: started,
                planningOnCache: planningOnCache)
            await started?.stop()
            return plannedOnCache
        } catch {
            await started?.stop()
            throw error
        }
    }

    private static func crashAndRestart(
        _ phase: Phase, at point: CrashPoint, harness: ContinuityHarness, intent: FleetIntent,
        requests: [ChannelID: Date], route: Route?, planningOnCache: Bool
    ) async throws -> Int {
        var sentOnCachedFacts: [String] = []
        var plannedOnCache = 0
        func check(_ report: PassReport) {
            if report.freshlyRead.count < intent.nodes.count { plannedOnCache += 1 }
            for (planned, _) in report.results where !report.freshlyRead.contains(planned.node) {
                sentOnCachedFacts.append("pass \(report.number): \(planned)")
            }
        }
        harness.armCrash(point)
        do {
            try await harness.converge(intent, rekeyRequests: requests, planningOnCache: planningOnCache, onPass: check)
            Issue.record("\(phase), killed \(point): the controller never reached its crash point")
            return plannedOnCache
        } catch let error as HarnessError where error.message.hasPrefix("the controller crashed") {}
        route?.reroute(harness)
        try harness.restartController()
        try await harness.converge(intent, rekeyRequests: requests, planningOnCache: planningOnCache, onPass: check)
        #expect(sentOnCachedFacts == [], "\(phase), killed \(point)")
        #expect(harness.violations == [], "\(phase), killed \(point)")
        try harness.assertConverged(intent)
        #expect(harness.checkedStates == harness.existingStates, "\(phase), killed \(point)")
        if phase == .rekey {
            for id in intent.channels.map(\.id) {
                let active = harness.records[id]?.generations.last { $0.state == .active }
                #expect(active?.number == 2, "\(phase), killed \(point): \(id) was not rotated")
            }
        }
        return plannedOnCache
    }

    /// How many operations the phase applies when nothing goes wrong, and which nodes get them.
    static func cleanRun(_ phase: Phase, seed: UInt64) async throws -> (applied: Int, nodes: [String]) {
        let (harness, intent, requests, _) = try await start(phase, seed: seed)
        var applied = 0
        var nodes: Set<String> = []
        try await harness.converge(intent, rekeyRequests: requests) { report in
            for (planned, outcome) in report.results where outcome.isApplied {
                applied += 1
                nodes.insert(planned.node)
            }
        }
        return (applied, nodes.sorted())
    }
}
