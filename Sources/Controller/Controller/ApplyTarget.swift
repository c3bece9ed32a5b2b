import DesiredState
import Kernel
import MeshwardCore
import Reconciler
import Store
import Synchronization

/// Which part of the fleet `apply --target` works on.
public enum ApplyTarget: Sendable, Hashable, Codable {
    /// Every channel to or from a node.
    case node(String)
    /// The channels from one node to another (both families).
    case channel(from: String, to: String)

    /// Parses `NODE` or `FROM:TO`; nil for anything else (`a:`, `:b`, `a:b:c`).
    public init?(argument text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 1 where !parts[0].isEmpty: self = .node(String(parts[0]))
        case 2 where !parts[0].isEmpty && !parts[1].isEmpty:
            self = .channel(from: String(parts[0]), to: String(parts[1]))
        default: return nil
        }
    }

    /// The argument as `apply --target` takes it.
    public var argument: String {
        switch self {
        case .node(let name): name
        case .channel(let from, let to): "\(from):\(to)"
        }
    }

    /// True when the target covers channel `id`.
    public func covers(_ id: ChannelID) -> Bool {
        switch self {
        case .node(let name): id.from == name || id.to == name
        case .channel(let from, let to): id.from == from && id.to == to
        }
    }
}

/// The part of the fleet a targeted run sees: the target's channels of the spec and of the
/// Store, and the address pairs (sender, receiver) their kernel objects carry. Everything
/// outside it is invisible to the run, so it is left exactly as it is.
struct FleetScope: Sendable {
    let target: ApplyTarget
    /// The spec narrowed to the target's channels (every node kept).
    let intent: FleetIntent
    /// The Store's records of the target's channels.
    let records: [ChannelID: ChannelRecord]
    /// (source, destination) of every kernel object that belongs to the target's channels.
    let addressPairs: Set<AddressPair>
    /// Every SA an observation through this scope left out: another channel's, never touched.
    let hidden = HiddenSAs()

    struct AddressPair: Hashable, Sendable {
        let source: IPAddress
        let destination: IPAddress
    }

    /// Throws `ControllerError.selection` when the target names no channel of the spec or the Store.
    init(target: ApplyTarget, intent: FleetIntent, records: [ChannelID: ChannelRecord]) throws {
        let channels = intent.channels.filter { target.covers($0.id) }
        let records = records.filter { target.covers($0.key) }
        guard !channels.isEmpty || !records.isEmpty else {
            switch target {
            case .node(let name):
                throw ControllerError.selection(
                    "--target \(name): no channel of the spec or the Store starts or ends at node \(name)")
            case .channel(let from, let to):
                throw ControllerError.selection(
                    "--target \(from):\(to): the spec and the Store have no channel from \(from) to \(to)")
            }
        }
        var pairs = Set(channels.map { AddressPair(source: $0.source, destination: $0.destination) })
        for record in records.values {
            for generation in record.generations {
                pairs.insert(AddressPair(source: generation.source, destination: generation.destination))
            }
        }
        self.target = target
        self.intent = FleetIntent(
            cluster: intent.cluster, reqid: intent.reqid, nodes: intent.nodes, channels: channels,
            flowCount: intent.flowCount, certificateLifetime: intent.certificateLifetime)
        self.records = records
        self.addressPairs = pairs
    }

    /// `observation` with only the target's objects. The SAs left out are reported as foreign,
    /// so the run neither touches them nor issues their SPIs.
    func narrow(_ observation: NodeObservation) -> NodeObservation {
        var narrowed = observation
        narrowed.securityAssociations = observation.securityAssociations.filter {
            addressPairs.contains(AddressPair(source: $0.source, destination: $0.destination))
        }
        narrowed.policies = observation.policies.filter {
            addressPairs.contains(
                AddressPair(source: $0.selector.source.address, destination: $0.selector.destination.address))
        }
        let left = observation.securityAssociations.filter {
            !addressPairs.contains(AddressPair(source: $0.source, destination: $0.destination))
        }.map(\.identifier)
        narrowed.foreignSPIs.formUnion(left)
        hidden.insert(left)
        return narrowed
    }
}

/// The SAs a scope hid, shared by its kernels (which fill it) and its Store view (which reads it).
final class HiddenSAs: Sendable {
    private let identifiers = Mutex<Set<SAIdentifier>>([])

    /// Adds SAs that an observation left out.
    func insert(_ left: [SAIdentifier]) { identifiers.withLock { $0.formUnion(left) } }

    /// Every SA left out so far.
    var all: Set<SAIdentifier> { identifiers.withLock { $0 } }
}
