import DesiredState
import Foundation
import Kernel
import MeshwardCore
import Synchronization

/// Lookups over one pass's input, built once per pass: nodes by number, what each reachable
/// node holds (positions into its observation), who owns an address, and which generation an
/// SA belongs to. Numbers instead of names keep the per-channel work free of string hashing.
struct FleetIndex: Sendable {
    /// Node names by number.
    private(set) var names: [String] = []
    private var numbers: [String: Int] = [:]
    /// Per node number: its observation, when it answered.
    private(set) var observations: [NodeObservation?] = []
    /// Per node number: whether it answered, and what it holds (kept apart from `observations`
    /// so that a lookup never copies a whole observation).
    private var observed: [Bool] = []
    private var heldSAs: [[SecurityAssociation]] = []
    private var heldPolicies: [[SecurityPolicy]] = []
    /// Per node number, in one flat array each (see `PositionTables`).
    private var saPositions = PositionTables()
    private var policyPositions = PositionTables()
    private var pinned = PositionTables()
    private var known: [Bool] = []
    /// Which node an address belongs to: the intent first, then the Store's generations.
    private(set) var addressOwner: [IPAddress: Int] = [:]
    private let generations: GenerationIndex

    /// Fleets of at least this many nodes have their nodes' tables built on every core.
    static let parallelNodes = 64

    init(input: PlanningInput, parallelNodes: Int = FleetIndex.parallelNodes) {
        generations = GenerationIndex(channels: input.channels)
        // The nodes in numbering order: the intent's, then those read, unreachable or known.
        var order: [String] = []
        var seen: Set<String> = []
        for name in input.intent.nodes.map(\.name) + input.observations.keys.sorted()
            + input.unreachable.keys.sorted() + input.knownNodes.sorted() where seen.insert(name).inserted
        {
            order.append(name)
        }
        // Each node's tables depend on its observation alone: at fleet scale they are built on
        // every core, then numbered in order.
        var tables = [Tables?](repeating: nil, count: order.count)
        if order.count >= parallelNodes {
            let order = order
            let built = Mutex(tables)
            DispatchQueue.concurrentPerform(iterations: order.count) { index in
                let node = Tables(input.observations[order[index]])
                built.withLock { $0[index] = node }
            }
            tables = built.withLock { $0 }
        }
        for (index, name) in order.enumerated() { add(name, input: input, tables: tables[index]) }
        for node in input.intent.nodes {
            guard let number = numbers[node.name] else { continue }
            for address in node.addresses { addressOwner[address] = number }
        }
    }

    /// The number of `name`, adding the node when it is new (a node only the Store remembers).
    @discardableResult
    mutating func add(_ name: String, input: PlanningInput, tables: Tables? = nil) -> Int {
        if let number = numbers[name] { return number }
        let number = names.count
        names.append(name)
        numbers[name] = number
        known.append(input.knownNodes.contains(name))
        let observation = input.observations[name]
        observations.append(observation)
        observed.append(observation != nil)
        heldSAs.append(observation?.securityAssociations ?? [])
        heldPolicies.append(observation?.policies ?? [])
        let built = tables ?? Tables(observation)
        saPositions.append(built.sas)
        policyPositions.append(built.policies)
        pinned.append(built.pins)
        return number
    }

    /// One node's lookup tables: its SAs and policies by identity, and its outbound policies by
    /// the SA they pin.
    struct Tables {
        var sas: PositionTable
        var policies: PositionTable
        var pins: PositionTable

        init(_ observation: NodeObservation?) {
            let held = observation?.securityAssociations ?? []
            let policies = observation?.policies ?? []
            sas = PositionTable(capacity: held.count)
            for (position, sa) in held.enumerated() { sas.insert(FleetIndex.key(sa.identifier), position: position) }
            self.policies = PositionTable(capacity: policies.count)
            pins = PositionTable(capacity: policies.count)
            for (position, policy) in policies.enumerated() {
                self.policies.insert(FleetIndex.key(policy.identifier), position: position)
                if policy.direction == .outbound, let spi = policy.template.spi {
                    pins.insert(
                        FleetIndex.key(SAIdentifier(destination: policy.selector.destination.address, spi: spi)),
                        position: position)
                }
            }
        }
    }

    /// Records the addresses a generation used, for nodes the intent no longer names.
    mutating func learnAddresses(of generation: Generation, input: PlanningInput) {
        if addressOwner[generation.source] == nil {
            addressOwner[generation.source] = add(generation.channel.from, input: input)
        }
        if addressOwner[generation.destination] == nil {
            addressOwner[generation.destination] = add(generation.channel.to, input: input)
        }
    }

    func number(_ name: String) -> Int? { numbers[name] }

    /// The node an address belongs to: the intent's (and removed channels') addresses first,
    /// then the addresses of the Store's live generations, so that objects on a re-addressed
    /// node's old address are staged like any other.
    func owner(of address: IPAddress) -> Int? {
        if let node = addressOwner[address] { return node }
        return generations.owner(of: address).flatMap { numbers[$0] }
    }

    func isObserved(_ node: Int) -> Bool { observed[node] }

    /// What is known of a peer: observed, unreachable (blocks), or gone (nothing to wait for).
    enum PeerState {
        case observed(Int)
        case unreachable(Int)
        case gone
    }

    func peer(owning address: IPAddress) -> PeerState {
        guard let node = owner(of: address), known[node] else { return .gone }
        return observed[node] ? .observed(node) : .unreachable(node)
    }

    static func key(_ id: SAIdentifier) -> UInt64 { Bits.mix(id.destination.mixedBits ^ UInt64(id.spi.rawValue)) }

    static func key(_ id: PolicyIdentifier) -> UInt64 {
        Bits.mix(id.selector.mixedBits &+ (id.direction == .inbound ? 1 : id.direction == .outbound ? 2 : 3))
    }

    func saPosition(_ id: SAIdentifier, on node: Int) -> Int? {
        saPositions.first(Self.key(id), in: node) { heldSAs[node][$0].identifier == id }
    }

    func policyPosition(_ id: PolicyIdentifier, on node: Int) -> Int? {
        policyPositions.first(Self.key(id), in: node) { position in
            let policy = heldPolicies[node][position]
            return policy.direction == id.direction && policy.selector == id.selector
        }
    }

    func sa(_ id: SAIdentifier, on node: Int) -> SecurityAssociation? {
        saPosition(id, on: node).map { heldSAs[node][$0] }
    }

    func policy(_ id: PolicyIdentifier, on node: Int) -> SecurityPolicy? {
        policyPosition(id, on: node).map { heldPolicies[node][$0] }
    }

    func policy(at position: Int, on node: Int) -> SecurityPolicy { heldPolicies[node][position] }

    /// True when `node` holds an SA under `id` that differs from `expected` (a tampered SA).
    func holdsDifferent(_ id: SAIdentifier, _ expected: SecurityAssociation, on node: Int) -> Bool {
        guard let held = sa(id, on: node) else { return false }
        return !held.hasSameConfiguration(as: expected)
    }

    /// True when an outbound policy of `node` pins the SA `id`.
    func pins(_ id: SAIdentifier, on node: Int) -> Bool {
        pinned.first(Self.key(id), in: node) { position in
            let policy = heldPolicies[node][position]
            return policy.template.spi == id.spi && policy.selector.destination.address == id.destination
        } != nil
    }

    /// True when `sender` holds an outbound policy for `selector` pinning an SA that `receiver` holds.
    func encrypts(_ selector: PolicySelector, sender: Int, receiver: Int) -> Bool {
        guard let policy = policy(PolicyIdentifier(selector: selector, direction: .outbound), on: sender),
            let spi = policy.template.spi
        else { return false }
        return saPosition(SAIdentifier(destination: selector.destination.address, spi: spi), on: receiver) != nil
    }

    /// The generation an SA belongs to, if the Store issued it.
    func generation(of id: SAIdentifier) -> Generation? { generations.generation(of: id) }
}

/// Generations by the SA they describe, built on first use: a pass with nothing to change
/// never needs it.
private final class GenerationIndex: Sendable {
    private let channels: [ChannelID: ChannelRecord]
    private let map = Mutex<[SAIdentifier: Generation]?>(nil)

    init(channels: [ChannelID: ChannelRecord]) { self.channels = channels }

    private let owners = Mutex<[IPAddress: String]?>(nil)

    /// The node that used `address` in a generation not yet retired, if any.
    func owner(of address: IPAddress) -> String? {
        owners.withLock { owners in
            if owners == nil {
                var built: [IPAddress: String] = [:]
                for record in channels.values {
                    for generation in record.generations where generation.state != .retired {
                        built[generation.source] = record.id.from
                        built[generation.destination] = record.id.to
                    }
                }
                owners = built
            }
            return owners?[address]
        }
    }

    func generation(of id: SAIdentifier) -> Generation? {
        map.withLock { map in
            if map == nil {
                var built: [SAIdentifier: Generation] = [:]
                for record in channels.values {
                    for generation in record.generations {
                        built[SAIdentifier(destination: generation.destination, spi: generation.spi)] = generation
                    }
                }
                map = built
            }
            return map?[id]
        }
    }
}
