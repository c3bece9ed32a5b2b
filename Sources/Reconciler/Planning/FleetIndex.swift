import DesiredState
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
    private var saPositions: [PositionTable] = []
    private var policyPositions: [PositionTable] = []
    private var pinned: [PositionTable] = []
    private var known: [Bool] = []
    /// Which node an address belongs to: the intent first, then the Store's generations.
    private(set) var addressOwner: [IPAddress: Int] = [:]
    private let generations: GenerationIndex

    init(input: PlanningInput) {
        generations = GenerationIndex(channels: input.channels)
        for node in input.intent.nodes {
            let number = add(node.name, input: input)
            for address in node.addresses { addressOwner[address] = number }
        }
        for name in input.observations.keys.sorted() { add(name, input: input) }
        for name in input.unreachable.keys.sorted() { add(name, input: input) }
        for name in input.knownNodes.sorted() { add(name, input: input) }
    }

    /// The number of `name`, adding the node when it is new (a node only the Store remembers).
    @discardableResult
    mutating func add(_ name: String, input: PlanningInput) -> Int {
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
        let held = observation?.securityAssociations ?? []
        let policies = observation?.policies ?? []
        var sas = PositionTable(capacity: held.count)
        for (position, sa) in held.enumerated() { sas.insert(Self.key(sa.identifier), position: position) }
        var policyTable = PositionTable(capacity: policies.count)
        var pins = PositionTable(capacity: policies.count)
        for (position, policy) in policies.enumerated() {
            policyTable.insert(Self.key(policy.identifier), position: position)
            if policy.direction == .outbound, let spi = policy.template.spi {
                pins.insert(
                    Self.key(SAIdentifier(destination: policy.selector.destination.address, spi: spi)),
                    position: position)
            }
        }
        saPositions.append(sas)
        policyPositions.append(policyTable)
        pinned.append(pins)
        return number
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
        saPositions[node].first(Self.key(id)) { heldSAs[node][$0].identifier == id }
    }

    func policyPosition(_ id: PolicyIdentifier, on node: Int) -> Int? {
        policyPositions[node].first(Self.key(id)) { position in
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
        pinned[node].first(Self.key(id)) { position in
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
