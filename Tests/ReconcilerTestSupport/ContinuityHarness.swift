import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import MeshwardTestSupport
import Store

@testable import Reconciler

/// Drives the reconciler on a simulated fleet and checks continuity in every kernel state that a
/// pass can reach, whatever the order in which its operations interleave across nodes.
///
/// The search (`ContinuityHarness+ReachableStates.swift`): each node applies its share of a
/// pass in order, so the states a pass can pass through are the products of per-node prefixes
/// — node i after its first k_i operations, for every 0 <= k_i <= n_i, (n_i + 1) states per
/// node, the product of them over the fleet — and every interleaving visits only such states.
/// A probe of channel A->B reads only A's output path and B's input path, so continuity in one
/// fleet state is continuity of every channel in the (k_A, k_B) projection of that state: the
/// search walks, per channel, all (n_A + 1)(n_B + 1) pairs of prefixes, which checks every one
/// of the product's states (counted in `fleetStates`) without building them. `checkedStates`
/// counts the pairs walked and `existingStates` the pairs that exist; they must be equal.
///
/// Continuity: every channel of the intent (and every channel still being removed) delivers a
/// probe packet on every one of its traffic selectors; once a selector of a channel has been
/// delivered encrypted under a required inbound policy (in this state or in any state before
/// it on some interleaving) and the intent still wants it required, it is never delivered in
/// plaintext. Packets take `latency` seconds on the wire: a packet encrypted under SPI s in
/// one state arrives in every later state of the pass (the pass's operations happen at one
/// instant of the clock) and in later passes until `latency` has passed, and the receiver must
/// still hold s (else `XfrmInNoStates`): this is what the drain protects.
///
/// A wipe (lost state) takes down every channel touching the wiped node: that outage is the
/// lost state itself. The restore is checked: a channel that is down may drop packets, but it
/// never delivers plaintext once its enforcement was required (that survives the wipe); it is
/// up again as soon as the fleet after a pass delivers every selector encrypted, which must
/// happen within the converge (one apply, design section 4), and from then on it is checked as
/// any other channel. `restoredAfter` says after which pass each one came back. Channels being
/// removed that touch a wiped node are not probed until the fleet converges.
///
/// Every node also holds foreign objects (another reqid, as strongSwan or an operator would
/// leave them): SAs on the node's own addresses, one with an SPI near the ones the scratch
/// store hands out, and udp/4500 policies to a peer outside the fleet at another priority.
/// They are installed through the raw kernel when the node is provisioned (and again after a
/// wipe, as the re-imaged machine's own IKE daemon would), and `assertConverged` checks that
/// every one of them is still there, unchanged.
final class ContinuityHarness {
    let fleet = SimulatedFleet()
    private(set) var store: ScratchGenerationStore
    let clock: ManualClock
    private(set) var reconciler: FleetReconciler
    private let rules: Set<FleetPlanner.Rule>
    let reqid = Reqid.meshwardDefault
    var records: [ChannelID: ChannelRecord] = [:]
    /// Seconds a packet travels between two nodes (0: delivered at once).
    let latency: TimeInterval

    /// How the states of a pass are searched.
    enum Search {
        /// Every pair of prefixes of each channel's two nodes (the default: linear in channels).
        case perChannel
        /// Every state of the product of all nodes' prefixes, built one by one (a cross-check of
        /// the per-channel search for small fleets: the product grows exponentially).
        case wholeFleet
    }

    let search: Search
    /// What went wrong, in the order found (at most `violationLimit` kept).
    var violations: [String] = []
    /// Every violation as "pass: selector what", without the state it was found in: the same for
    /// both searches.
    var verdicts: Set<String> = []
    /// Fleet states built and probed by the whole-fleet search, over all passes.
    var checkedFleetStates = 0
    static let violationLimit = 40
    /// Per-channel pairs of node prefixes walked, over all passes.
    var checkedStates = 0
    /// Per-channel pairs of node prefixes that exist, over all passes: the sum over passes and
    /// probed channels of (n_from + 1)(n_to + 1), counted from the plans before the walk.
    var existingStates = 0
    /// Fleet states covered, over all passes: the sum over passes of the product of (n_i + 1)
    /// over the nodes that received operations (saturating at Int.max).
    var fleetStates = 0
    /// Planned operations whose every prefix state was checked.
    var checkedOperations = 0
    /// One entry per pass that planned operations: how many each node got, and the states.
    var searches: [PassSearch] = []
    /// Selectors of channels whose receiver has enforced since the selector last appeared.
    var enforced: Set<TrafficProbe> = []
    /// Packets still on the wire after the last state checked, per selector, with their sending time.
    var inFlight: [TrafficProbe: [SPI: (packet: PacketInFlight, sentAt: Date)]] = [:]
    /// Nodes wiped since the last convergence.
    var wiped: Set<String> = []
    /// Channels down because a node they touch was wiped, until the fleet delivers them again.
    var down: Set<ChannelID> = []
    /// Per channel that went down: the pass of its converge after which it delivered again.
    var restoredAfter: [ChannelID: Int] = [:]
    /// The pass being checked, counted from 1 in each converge.
    var passNumber = 0
    private var lastIntent: FleetIntent?
    var removing: [ChannelID: (source: IPAddress, destination: IPAddress, traffic: [TrafficMatch])] = [:]

    /// The reqid of the foreign objects every node holds.
    static let foreignReqid = Reqid(0x1234)
    /// The peer outside the fleet that the foreign objects talk to.
    static let foreignPeers = [IPAddress("203.0.113.7"), IPAddress("2001:db8:ffff::7")].compactMap { $0 }
    /// The foreign objects installed on each node, as installed.
    private(set) var foreign: [String: ForeignObjects] = [:]
    private var foreignRandom: SeededRandom

    /// The default time on the wire: 50 ms, a long-haul path, well under any drain a spec may set
    /// above zero.
    static let defaultLatency: TimeInterval = 0.05

    /// - Parameter onClockChange: told each time a watch of the harness's clock starts, or a
    ///   sleep or a watch starts waiting or is cancelled (`ManualClock`'s `onChange`), for tests
    ///   that wait for a timer of the code under test (a watch's backoff) before moving the clock.
    init(
        seed: UInt64, latency: TimeInterval = ContinuityHarness.defaultLatency, rules: Set<FleetPlanner.Rule> = [],
        search: Search = .perChannel, onClockChange: @escaping @Sendable () -> Void = {}
    ) {
        clock = ManualClock(onChange: onClockChange)
        self.search = search
        foreignRandom = SeededRandom(seed: seed ^ 0xF0E1_D2C3_B4A5_9687)
        self.latency = latency
        self.rules = rules
        store = ScratchGenerationStore(channels: [:])
        reconciler = Self.makeReconciler(store: store, fleet: fleet, reqid: reqid, clock: clock, rules: rules)
    }

    /// Kernels that replace the fleet's own, such as agents serving it (`routeThroughAgents`).
    private var kernelsOverride: (any FleetKernels)?
    /// The cache the reconciler plans on when a converge asks for it (the controller's watch).
    private var cache: (any ObservationCache)?
    /// Whether a pass planned on the cache reads afresh what it would act on: false only for the
    /// negative controls that show a test's checks catch a plan sent on cached facts.
    private var readsAfreshBeforeActing = true

    /// Every later pass reaches the fleet through `kernels` (agents over gRPC serving this
    /// same simulated fleet), so the same checks run with a transport in between. With `cache`
    /// (the controller's watch of those agents), a converge may plan on it; with
    /// `readsAfreshBeforeActing` false, the reconciler sends what it planned on the cache without
    /// reading those nodes afresh (the rule switched off, for negative controls).
    func routeThroughAgents(
        _ kernels: any FleetKernels, cache: (any ObservationCache)? = nil, readsAfreshBeforeActing: Bool = true
    ) {
        kernelsOverride = kernels
        self.cache = cache
        self.readsAfreshBeforeActing = readsAfreshBeforeActing
        restartReconciler()
    }

    private static func makeReconciler(
        store: ScratchGenerationStore, fleet: SimulatedFleet, reqid: Reqid, clock: ManualClock,
        rules: Set<FleetPlanner.Rule>, kernels: (any FleetKernels)? = nil, cache: (any ObservationCache)? = nil,
        readsAfreshBeforeActing: Bool = true
    ) -> FleetReconciler {
        FleetReconciler(
            store: store, kernels: kernels ?? SimulatedFleetKernels(fleet: fleet, reqid: reqid), reqid: reqid,
            clock: clock,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            planner: FleetPlanner(disabling: rules), cache: cache, readsAfreshBeforeActing: readsAfreshBeforeActing)
    }

    /// The crash armed by `armCrash`, if any.
    var crashLatch: CrashLatch?

    /// A new reconciler (nothing in memory) over the same Store and kernels.
    func restartReconciler() {
        reconciler = Self.makeReconciler(
            store: store, fleet: fleet, reqid: reqid, clock: clock, rules: rules, kernels: kernelsOverride,
            cache: cache, readsAfreshBeforeActing: readsAfreshBeforeActing)
    }

    /// The state directory is lost: a controller with an empty Store takes over the same kernels.
    /// Its scratch store hands out SPIs from `firstSPI` down (by default the same ones the lost
    /// store began with, so that a new generation's SPI meets a stale object's).
    func forgetStore(firstSPI: UInt32 = 0xFFFF_FFFF) {
        store = ScratchGenerationStore(channels: [:], firstSPI: firstSPI)
        reconciler = Self.makeReconciler(
            store: store, fleet: fleet, reqid: reqid, clock: clock, rules: rules, kernels: kernelsOverride,
            cache: cache, readsAfreshBeforeActing: readsAfreshBeforeActing)
        records = [:]
    }

    /// Makes the spec's machines exist (a joining node is a machine with an empty kernel).
    /// Nodes new to the fleet get their foreign objects.
    func provision(_ intent: FleetIntent) {
        let fresh = fleet.withState { state in
            var fresh: [String] = []
            for node in intent.nodes {
                if state.nodes[node.name] == nil { fresh.append(node.name) }
                state.addNode(node.name, addresses: node.addresses)
            }
            return fresh
        }
        for node in fresh.sorted() {
            let addresses = intent.nodes.first { $0.name == node }?.addresses ?? []
            foreign[node] = makeForeignObjects(addresses: addresses)
            installForeign(on: node)
        }
    }

    func wipe(_ node: String) {
        fleet.wipe(node: node)
        wiped.insert(node)
        for id in records.keys where id.from == node || id.to == node {
            down.insert(id)
            restoredAfter[id] = nil
        }
        installForeign(on: node)
    }

    /// A few foreign SAs and policies for a node with `addresses`: per address, an inbound SA from
    /// the outside peer (SPI drawn near the scratch store's, so that SPI avoidance is exercised),
    /// an outbound SA to it, and udp/4500 policies both ways at priority 2000.
    private func makeForeignObjects(addresses: [IPAddress]) -> ForeignObjects {
        var objects = ForeignObjects()
        for address in addresses {
            guard let peer = Self.foreignPeers.first(where: { $0.family == address.family }) else { continue }
            let spis = (0..<2).map { _ in SPI(UInt32.max - UInt32(foreignRandom.next() % 48)) }
            let key = KeyMaterial(bytes: (0..<36).map { _ in UInt8(truncatingIfNeeded: foreignRandom.next()) })
            let inboundSA = SecurityAssociation(
                source: peer, destination: address, spi: spis[0], reqid: Self.foreignReqid, cipher: .aesGCM256,
                key: .material(key))
            objects.securityAssociations.append(inboundSA)
            if foreignRandom.next() % 2 == 0 {
                let outboundSA = SecurityAssociation(
                    source: address, destination: peer, spi: spis[1], reqid: Self.foreignReqid, cipher: .aesGCM256,
                    key: .material(key))
                objects.securityAssociations.append(outboundSA)
            }
            let outbound = PolicySelector(
                source: IPPrefix(host: address), destination: IPPrefix(host: peer),
                traffic: TrafficMatch(transport: .udp, destinationPort: 4_500))
            let inbound = PolicySelector(
                source: IPPrefix(host: peer), destination: IPPrefix(host: address),
                traffic: TrafficMatch(transport: .udp, sourcePort: 4_500))
            for (selector, direction) in [(outbound, PolicyDirection.outbound), (inbound, .inbound)] {
                let template = PolicyTemplate(
                    family: address.family, spi: nil, reqid: Self.foreignReqid, isOptional: false)
                objects.policies.append(
                    SecurityPolicy(selector: selector, direction: direction, priority: 2_000, template: template))
            }
        }
        return objects
    }

    private func installForeign(on node: String) {
        guard let objects = foreign[node] else { return }
        fleet.withState { state in
            for sa in objects.securityAssociations { _ = state.apply(.addSA(sa), on: node) }
            for policy in objects.policies { _ = state.apply(.addPolicy(policy), on: node) }
        }
        // What the kernel reports for them (keys as fingerprints) is the reference from now on.
        foreign[node] = foreignObjects(on: node, in: fleet.state)
    }

    private func foreignObjects(on node: String, in state: SimulatedFleetState) -> ForeignObjects {
        guard let record = state.nodes[node] else { return ForeignObjects() }
        return ForeignObjects(
            securityAssociations: record.securityAssociations.filter { $0.reqid == Self.foreignReqid },
            policies: record.policies.filter { $0.template.reqid == Self.foreignReqid })
    }

    /// Runs passes until converged; checks every pass. Returns the number of passes. `onPass` sees
    /// each pass's report once it ran, with `records` already updated, and may wait for the code
    /// under test (a fault injected between two passes) before the next pass starts.
    @discardableResult
    ///
    /// `planningOnCache`: every pass plans on the cache given to `routeThroughAgents`, and acts
    /// on fresh reads (`FleetReconciler.preparePass`).
    func converge(
        _ intent: FleetIntent, rekeyRequests: [ChannelID: Date] = [:], passLimit: Int = 24,
        planningOnCache: Bool = false, onPass: (PassReport) async throws -> Void = { _ in }
    ) async throws -> Int {
        provision(intent)
        noteIntent(intent)
        // Whatever happened since the last converge (a spec edit, a re-addressed or re-imaged
        // machine) took longer than a packet's flight: what was on the wire has landed.
        inFlight = [:]
        var passes = 0
        var failing = 0
        while passes < passLimit {
            passes += 1
            passNumber = passes
            let prepared = try await reconciler.preparePass(
                number: passes, intent: intent, records: &records, rekeyRequests: rekeyRequests,
                planningOnCache: planningOnCache)
            checkReachableStates(prepared, intent: intent)
            let report = try await reconciler.execute(prepared)
            try await onPass(report)
            // Settle the enforcement bookkeeping on the real fleet after the pass.
            noteEnforcement(intent)
            if crashLatch?.hasFired == true { throw HarnessError(message: "the controller crashed in pass \(passes)") }
            if !report.failures.isEmpty {
                failing += 1
                if failing > 6 {
                    throw HarnessError(message: "operations keep failing: \(report.failures.map(\.planned))")
                }
                continue
            }
            failing = 0
            if report.plan.hasWork || report.madeProgress { continue }
            if let deadline = report.plan.nextDeadline {
                try await clock.sleep(until: deadline)
                continue
            }
            if report.plan.isConverged {
                if !down.isEmpty {
                    throw HarnessError(message: "converged, but still down: \(down.sorted())")
                }
                wiped.removeAll()
                removing.removeAll()
                return passes
            }
            throw HarnessError(message: "blocked: \(report.plan.blocked)")
        }
        throw HarnessError(message: "did not converge in \(passLimit) passes")
    }

    private func noteIntent(_ intent: FleetIntent) {
        if let lastIntent {
            let now = Set(intent.channels.map(\.id))
            for channel in lastIntent.channels where !now.contains(channel.id) {
                removing[channel.id] = (channel.source, channel.destination, channel.traffic)
                forgetEnforcement(of: channel.id) { _ in true }
                // A channel that left the spec is not restored: it is removed.
                down.remove(channel.id)
            }
            // A channel whose addresses or enforcement changed starts over; one whose selectors
            // changed starts over on the selectors it lost or gained.
            for channel in intent.channels {
                guard let old = lastIntent.channel(channel.id) else { continue }
                if old.source != channel.source || old.destination != channel.destination
                    || old.enforcement != channel.enforcement
                {
                    forgetEnforcement(of: channel.id) { _ in true }
                } else if old.traffic != channel.traffic {
                    let kept = Set(old.traffic).intersection(channel.traffic)
                    forgetEnforcement(of: channel.id) { !kept.contains($0) }
                }
            }
        }
        lastIntent = intent
    }

    private func forgetEnforcement(of channel: ChannelID, where forget: (TrafficMatch) -> Bool) {
        enforced = enforced.filter { $0.channel != channel || !forget($0.traffic) }
    }

    /// Every owned object in the fleet is one the intent wants, and every channel delivers
    /// encrypted with its active generation. Nodes in `excluded` (a revoked node, never dialled
    /// again) are not counted.
    func assertConverged(_ intent: FleetIntent, excluding excluded: Set<String> = []) throws {
        var state = fleet.state
        for channel in intent.channels {
            for traffic in channel.traffic.isEmpty ? [.any] : channel.traffic {
                let outcome = state.send(
                    from: channel.id.from, to: channel.destination, transport: traffic.transport ?? .udp,
                    sourcePort: traffic.sourcePort ?? 40_000, destinationPort: traffic.destinationPort ?? 4_000)
                guard case .deliveredEncrypted(let spi) = outcome else {
                    throw HarnessError(message: "\(channel.id) \(traffic) after convergence: \(outcome)")
                }
                guard let active = records[channel.id]?.generations.last(where: { $0.state == .active }),
                    active.spi == spi
                else {
                    throw HarnessError(message: "\(channel.id) encrypts with \(spi.hex), not its active generation")
                }
            }
        }
        var expectedSAs = 0
        var expectedPolicies = 0
        for channel in intent.channels {
            expectedSAs += 2
            expectedPolicies += 2 * channel.traffic.count
        }
        var sas = 0
        var policies = 0
        for node in state.nodes.keys where !excluded.contains(node) {
            let observation = try state.observe(node: node, reqid: reqid)
            sas += observation.securityAssociations.count
            policies += observation.policies.count
        }
        if sas != expectedSAs || policies != expectedPolicies {
            throw HarnessError(
                message: "orphans: \(sas) SAs (want \(expectedSAs)), \(policies) policies (want \(expectedPolicies))")
        }
        try assertForeignUntouched()
    }

    /// Every foreign object installed is still on its node, identical (counters included).
    func assertForeignUntouched() throws {
        let state = fleet.state
        for (node, installed) in foreign.sorted(by: { $0.key < $1.key }) {
            let now = foreignObjects(on: node, in: state)
            guard now.isIdentical(to: installed) else {
                throw HarnessError(message: "foreign objects on \(node) changed: had \(installed), now \(now)")
            }
        }
    }

    /// How many foreign objects the fleet holds in all.
    var foreignObjectCount: Int {
        foreign.values.reduce(0) { $0 + $1.securityAssociations.count + $1.policies.count }
    }
}

/// The objects of another owner on one node, as the kernel reports them.
struct ForeignObjects: CustomStringConvertible {
    var securityAssociations: [SecurityAssociation] = []
    var policies: [SecurityPolicy] = []

    /// Same objects in the same order, with the same counters and key fingerprints.
    func isIdentical(to other: ForeignObjects) -> Bool {
        securityAssociations == other.securityAssociations && policies == other.policies
            && securityAssociations.map(\.counters) == other.securityAssociations.map(\.counters)
            && securityAssociations.map(\.key.fingerprint) == other.securityAssociations.map(\.key.fingerprint)
            && securityAssociations.map(\.reqid) == other.securityAssociations.map(\.reqid)
    }

    var description: String {
        "\(securityAssociations.map(\.description)) \(policies.map(\.description))"
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
