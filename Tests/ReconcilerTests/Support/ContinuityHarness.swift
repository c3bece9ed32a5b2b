import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestSupport
import Store

@testable import Reconciler

/// Drives the reconciler on a simulated fleet and checks continuity after every single kernel
/// operation, for every order in which a pass's operations can interleave across nodes
/// (exhaustively up to `exhaustiveLimit` orders, else `sampledOrders` random ones).
///
/// Continuity: every channel of the intent (and every channel still being removed) delivers a
/// probe packet; once a channel's receiver enforces (its inbound policy required) and the
/// intent still wants it required, the probe is never delivered in plaintext. Channels that
/// touch a node whose state was wiped are exempt until the fleet converges again: that outage
/// is the lost state itself, and the design bounds it to one apply.
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
    let clock = ManualClock()
    private(set) var reconciler: FleetReconciler
    private let rules: Set<FleetPlanner.Rule>
    let reqid = Reqid.meshwardDefault
    var records: [ChannelID: ChannelRecord] = [:]
    var random: SeededRandom
    let exhaustiveLimit: Int
    let sampledOrders: Int

    private(set) var violations: [String] = []
    private(set) var checkedOrders = 0
    private(set) var checkedOperations = 0
    /// Channels whose receiver has enforced since the channel last appeared.
    private var enforced: Set<ChannelID> = []
    /// Channels exempt from continuity until the next convergence (a node was wiped).
    private var exempt: Set<String> = []
    private var lastIntent: FleetIntent?
    private var removing: [ChannelID: (source: IPAddress, destination: IPAddress, traffic: TrafficMatch)] = [:]

    /// The reqid of the foreign objects every node holds.
    static let foreignReqid = Reqid(0x1234)
    /// The peer outside the fleet that the foreign objects talk to.
    static let foreignPeers = [IPAddress("203.0.113.7"), IPAddress("2001:db8:ffff::7")].compactMap { $0 }
    /// The foreign objects installed on each node, as installed.
    private(set) var foreign: [String: ForeignObjects] = [:]
    private var foreignRandom: SeededRandom

    init(seed: UInt64, exhaustiveLimit: Int = 720, sampledOrders: Int = 40, rules: Set<FleetPlanner.Rule> = []) {
        random = SeededRandom(seed: seed)
        foreignRandom = SeededRandom(seed: seed ^ 0xF0E1_D2C3_B4A5_9687)
        self.exhaustiveLimit = exhaustiveLimit
        self.sampledOrders = sampledOrders
        self.rules = rules
        store = ScratchGenerationStore(channels: [:])
        reconciler = Self.makeReconciler(store: store, fleet: fleet, reqid: reqid, clock: clock, rules: rules)
    }

    private static func makeReconciler(
        store: ScratchGenerationStore, fleet: SimulatedFleet, reqid: Reqid, clock: ManualClock,
        rules: Set<FleetPlanner.Rule>
    ) -> FleetReconciler {
        FleetReconciler(
            store: store, kernels: SimulatedFleetKernels(fleet: fleet, reqid: reqid), reqid: reqid, clock: clock,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            planner: FleetPlanner(disabling: rules))
    }

    /// The state directory is lost: a controller with an empty Store takes over the same kernels.
    /// Its scratch store hands out SPIs from `firstSPI` down (by default the same ones the lost
    /// store began with, so that a new generation's SPI meets a stale object's).
    func forgetStore(firstSPI: UInt32 = 0xFFFF_FFFF) {
        store = ScratchGenerationStore(channels: [:], firstSPI: firstSPI)
        reconciler = Self.makeReconciler(store: store, fleet: fleet, reqid: reqid, clock: clock, rules: rules)
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
        exempt.insert(node)
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
    /// each pass's report once it ran, with `records` already updated.
    @discardableResult
    func converge(
        _ intent: FleetIntent, rekeyRequests: [ChannelID: Date] = [:], passLimit: Int = 24,
        onPass: (PassReport) -> Void = { _ in }
    ) async throws -> Int {
        provision(intent)
        noteIntent(intent)
        var passes = 0
        var failing = 0
        while passes < passLimit {
            passes += 1
            let prepared = try await reconciler.preparePass(
                number: passes, intent: intent, records: &records, rekeyRequests: rekeyRequests)
            checkInterleavings(prepared, intent: intent)
            let report = try await reconciler.execute(prepared)
            onPass(report)
            // Settle the enforcement bookkeeping on the real fleet after the pass.
            noteEnforcement(intent)
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
                exempt.removeAll()
                removing.removeAll()
                return passes
            }
            throw HarnessError(message: "blocked: \(report.plan.blocked)")
        }
        throw HarnessError(message: "did not converge in \(passLimit) passes")
    }

    // MARK: - Checks

    private func checkInterleavings(_ prepared: PreparedPass, intent: FleetIntent) {
        let lists = prepared.plan.operations.sorted { $0.key < $1.key }.map { ($0.key, $0.value.map(\.operation)) }
        guard !lists.isEmpty else { return }
        let base = fleet.state
        let orders = Interleavings.orders(
            of: lists.map(\.1.count), limit: exhaustiveLimit, samples: sampledOrders,
            random: &random)
        for order in orders {
            checkedOrders += 1
            var state = base
            var cursor = [Int](repeating: 0, count: lists.count)
            var enforcedHere = enforced
            for list in order {
                let (node, operations) = lists[list]
                let operation = operations[cursor[list]]
                cursor[list] += 1
                _ = state.apply(operation, on: node, reqid: reqid)
                checkedOperations += 1
                probe(
                    state, intent: intent, enforced: &enforcedHere, after: "\(node): \(operation)",
                    pass: prepared.number)
                if violations.count > 20 { return }
            }
        }
    }

    private func probe(
        _ state: SimulatedFleetState, intent: FleetIntent, enforced: inout Set<ChannelID>,
        after operation: String, pass: Int
    ) {
        for channel in intent.channels where !exempt.contains(channel.id.from) && !exempt.contains(channel.id.to) {
            var copy = state
            let traffic = channel.traffic.first ?? .any
            let outcome = copy.send(
                from: channel.id.from, to: channel.destination, transport: traffic.transport ?? .udp,
                sourcePort: traffic.sourcePort ?? 40_000, destinationPort: traffic.destinationPort ?? 4_000)
            switch outcome {
            case .deliveredEncrypted:
                if channel.enforcement == .required, receiverEnforces(state, channel) { enforced.insert(channel.id) }
            case .deliveredPlaintext:
                if channel.enforcement == .required, enforced.contains(channel.id) {
                    violations.append(
                        "pass \(pass), after \(operation): \(channel.id) sent plaintext after enforcement")
                }
            case .dropped, .undeliverable:
                violations.append("pass \(pass), after \(operation): \(channel.id) \(outcome)")
            }
        }
        for (id, removed) in removing where !exempt.contains(id.from) && !exempt.contains(id.to) {
            guard state.node(holding: removed.destination) == id.to else { continue }
            var copy = state
            let outcome = copy.send(
                from: id.from, to: removed.destination, transport: removed.traffic.transport ?? .udp,
                sourcePort: removed.traffic.sourcePort ?? 40_000,
                destinationPort: removed.traffic.destinationPort ?? 4_000)
            if !outcome.isDelivered {
                violations.append("pass \(pass), after \(operation): removed channel \(id) \(outcome)")
            }
        }
    }

    private func receiverEnforces(_ state: SimulatedFleetState, _ channel: ChannelIntent) -> Bool {
        guard let observation = try? state.observe(node: channel.id.to, reqid: reqid) else { return false }
        return observation.policies.contains {
            $0.direction == .inbound && !$0.template.isOptional
                && $0.selector.source.address == channel.source
                && $0.selector.destination.address == channel.destination
        }
    }

    private func noteEnforcement(_ intent: FleetIntent) {
        let state = fleet.state
        var unused = enforced
        probe(state, intent: intent, enforced: &unused, after: "the pass", pass: -1)
        enforced = unused
    }

    private func noteIntent(_ intent: FleetIntent) {
        if let lastIntent {
            let now = Set(intent.channels.map(\.id))
            for channel in lastIntent.channels where !now.contains(channel.id) {
                removing[channel.id] = (channel.source, channel.destination, channel.traffic.first ?? .any)
                enforced.remove(channel.id)
            }
            // A channel whose addresses, ports or enforcement changed starts over.
            for channel in intent.channels {
                if let old = lastIntent.channel(channel.id),
                    old.source != channel.source || old.destination != channel.destination
                        || old.enforcement != channel.enforcement || old.traffic != channel.traffic
                {
                    enforced.remove(channel.id)
                }
            }
        }
        lastIntent = intent
    }

    /// Every owned object in the fleet is one the intent wants, and every channel delivers
    /// encrypted with its active generation.
    func assertConverged(_ intent: FleetIntent) throws {
        var state = fleet.state
        for channel in intent.channels {
            let traffic = channel.traffic.first ?? .any
            let outcome = state.send(
                from: channel.id.from, to: channel.destination, transport: traffic.transport ?? .udp,
                sourcePort: traffic.sourcePort ?? 40_000, destinationPort: traffic.destinationPort ?? 4_000)
            guard case .deliveredEncrypted(let spi) = outcome else {
                throw HarnessError(message: "\(channel.id) after convergence: \(outcome)")
            }
            guard let active = records[channel.id]?.generations.last(where: { $0.state == .active }), active.spi == spi
            else {
                throw HarnessError(message: "\(channel.id) encrypts with \(spi.hex), not its active generation")
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
        for node in state.nodes.keys {
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
