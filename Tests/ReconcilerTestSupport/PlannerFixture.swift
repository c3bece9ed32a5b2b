import DesiredState
import Foundation
import Kernel
import Logging
import MeshwardCore
import MeshwardTestKit
import Store

@testable import KernelSimulator
@testable import Reconciler

/// A simulated fleet driven pass by pass, for tests that reproduce one planner scenario: the
/// Store, the kernels and the clock are in reach, and every pass's report is kept.
final class PlannerFixture {
    let fleet = SimulatedFleet()
    let clock = ManualClock()
    let reqid = Reqid.meshwardDefault
    private(set) var store: any PassStore
    private(set) var reconciler: FleetReconciler
    var records: [ChannelID: ChannelRecord] = [:]
    /// Every pass run so far, oldest first.
    private(set) var reports: [PassReport] = []
    private let fence: any WriteFence
    private let rules: Set<FleetPlanner.Rule>
    /// What the nodes are reached through instead of the fleet's own kernels, and the cache
    /// passes may plan on (`routeThroughAgents`).
    private var kernelsOverride: (any FleetKernels)?
    private var cache: (any ObservationCache)?

    /// - Parameter rules: staging rules to switch off (negative controls).
    init(
        store: any PassStore = ScratchGenerationStore(channels: [:]), fence: any WriteFence = UnfencedWrites(),
        rules: Set<FleetPlanner.Rule> = []
    ) {
        self.store = store
        self.fence = fence
        self.rules = rules
        reconciler = Self.makeReconciler(store: store, fleet: fleet, clock: clock, fence: fence, rules: rules)
    }

    private static func makeReconciler(
        store: any PassStore, fleet: SimulatedFleet, clock: ManualClock, fence: any WriteFence,
        rules: Set<FleetPlanner.Rule>, kernels: (any FleetKernels)? = nil, cache: (any ObservationCache)? = nil
    ) -> FleetReconciler {
        FleetReconciler(
            store: store, kernels: kernels ?? SimulatedFleetKernels(fleet: fleet, reqid: .meshwardDefault),
            reqid: .meshwardDefault,
            clock: clock, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            planner: FleetPlanner(disabling: rules), fence: fence, cache: cache)
    }

    /// From now on the nodes are reached through `kernels` (agents serving this fleet), and
    /// `cache` is what passes planned on the cache (`apply(planningOnCache: true)`) plan on.
    func routeThroughAgents(_ kernels: any FleetKernels, cache: (any ObservationCache)? = nil) {
        kernelsOverride = kernels
        self.cache = cache
        reconciler = Self.makeReconciler(
            store: store, fleet: fleet, clock: clock, fence: fence, rules: rules, kernels: kernels, cache: cache)
    }

    /// A new controller process on the same Store and kernels: nothing kept in memory survives.
    func restartController() async throws {
        reconciler = Self.makeReconciler(
            store: store, fleet: fleet, clock: clock, fence: fence, rules: rules, kernels: kernelsOverride, cache: cache
        )
        records = try await store.loadChannels()
    }

    /// The state directory is lost: an empty Store (issuing other SPIs) on the same kernels.
    func loseStore() {
        store = ScratchGenerationStore(channels: [:], firstSPI: 0x8000_0000)
        reconciler = Self.makeReconciler(
            store: store, fleet: fleet, clock: clock, fence: fence, rules: rules, kernels: kernelsOverride, cache: cache
        )
        records = [:]
    }

    /// Makes the spec's machines exist with the spec's addresses (a re-addressed node moves).
    func provision(_ intent: FleetIntent) {
        fleet.withState { state in
            for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
        }
    }

    /// One pass against `intent`.
    @discardableResult
    func pass(_ intent: FleetIntent, rekeyRequests: [ChannelID: Date] = [:]) async throws -> PassReport {
        provision(intent)
        let report = try await reconciler.runPass(
            number: reports.count + 1, intent: intent, records: &records, rekeyRequests: rekeyRequests)
        reports.append(report)
        return report
    }

    /// Runs passes as `apply` does (sleeping through drains when `waitForDrain`), and returns how
    /// the run ended.
    @discardableResult
    func apply(
        _ intent: FleetIntent, rekeyRequests: [ChannelID: Date] = [:], waitForDrain: Bool = true,
        planningOnCache: Bool = false
    ) async throws -> ConvergeReport.Outcome {
        provision(intent)
        let report = try await reconciler.converge(
            intent: intent, waitForDrain: waitForDrain, rekeyRequests: rekeyRequests, planningOnCache: planningOnCache)
        reports += report.passes
        records = try await store.loadChannels()
        return report.outcome
    }

    /// Every operation the kernels applied, in order, with the pass that sent it.
    var applied: [(pass: PassReport, planned: PlannedOperation)] {
        reports.flatMap { report in report.results.filter { $0.outcome.isApplied }.map { (report, $0.planned) } }
    }

    /// A probe packet from `from` to `address`, udp/4000 unless told otherwise.
    func send(from: String, to address: IPAddress, port: UInt16 = 4_000) -> PacketOutcome {
        fleet.withState { state in
            state.send(from: from, to: address, transport: .udp, sourcePort: 40_000, destinationPort: port)
        }
    }

    /// The owned objects of `node` as its kernel reports them.
    func observe(_ node: String) throws -> NodeObservation {
        try fleet.withState { state in try state.observe(node: node, reqid: reqid) }
    }

    /// Changes an SA in place in the simulated kernel, as a tamperer or a late packet would.
    func modifySA(on node: String, _ id: SAIdentifier, _ change: (inout SimulatedSecurityAssociation) -> Void) {
        fleet.withState { state in
            guard var sa = state.nodes[node]?.securityAssociationDatabase[id] else { return }
            change(&sa)
            state.nodes[node]?.securityAssociationDatabase[id] = sa
        }
    }

    /// Every object each channel of `intent` needs, checked independently of the planner: the
    /// active generation's SA on both nodes, and per traffic selector the sender's outbound
    /// policy pinning it (required) and the receiver's inbound policy (required unless the
    /// channel is permissive). Returns what is missing or differs, empty when everything is in place.
    func missingExpectedObjects(_ intent: FleetIntent) throws -> [String] {
        var missing: [String] = []
        for channel in intent.channels {
            guard let active = records[channel.id]?.generations.last(where: { $0.state == .active }) else {
                missing.append("\(channel.id): no active generation")
                continue
            }
            if active.source != channel.source || active.destination != channel.destination
                || active.cipher != channel.cipher
            {
                missing.append("\(channel.id): active generation \(active.number) does not match the spec")
            }
            let id = SAIdentifier(destination: channel.destination, spi: active.spi)
            let sender = try observe(channel.id.from)
            let receiver = try observe(channel.id.to)
            for (node, observation) in [(channel.id.from, sender), (channel.id.to, receiver)]
            where !observation.securityAssociations.contains(where: { $0.identifier == id }) {
                missing.append("\(channel.id): \(node) lacks \(id)")
            }
            for traffic in channel.traffic {
                let selector = PolicySelector(
                    source: IPPrefix(host: channel.source), destination: IPPrefix(host: channel.destination),
                    traffic: traffic)
                let outbound = sender.policies.first { $0.selector == selector && $0.direction == .outbound }
                if outbound?.template.spi != active.spi || outbound?.template.isOptional != false {
                    missing.append("\(channel.id): \(channel.id.from) has no required policy pinning \(active.spi.hex)")
                }
                let inbound = receiver.policies.first { $0.selector == selector && $0.direction == .inbound }
                if inbound == nil || inbound?.template.isOptional != (channel.enforcement == .permissive) {
                    missing.append("\(channel.id): \(channel.id.to) has no \(channel.enforcement) inbound policy")
                }
            }
        }
        return missing
    }
}
