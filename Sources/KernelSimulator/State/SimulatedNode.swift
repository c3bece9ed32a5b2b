import Kernel
import MeshwardCore

/// One simulated node: its addresses, its SA database (keyed by destination and SPI, whatever
/// the reqid, as the kernel keys it), its policy database (keyed by selector and direction),
/// its XFRM statistics, and the faults waiting for its next operations.
public struct SimulatedNode: Sendable, Hashable {
    /// The node's name.
    public let name: String
    /// The node's addresses; packets to any of them reach this node.
    public internal(set) var addresses: [IPAddress]
    /// `/proc/net/xfrm_stat` of the node: counter name -> value. Reset by a wipe.
    public internal(set) var statistics: [String: UInt64]
    /// False while the controller cannot reach the node's kernel. Packets still flow: only the
    /// management path is down.
    public internal(set) var isReachable: Bool

    var securityAssociationDatabase: [SAIdentifier: SimulatedSecurityAssociation] {
        didSet { revision.count &+= 1 }
    }
    var policyDatabase: [PolicyIdentifier: SimulatedPolicy] {
        didSet { revision.count &+= 1 }
    }
    /// Moves on every write of either database, so that a fleet's watches notice changes made
    /// outside an operation; takes no part in equality or persistence.
    var revision = SimulatedNodeRevision()
    var faults: PendingFaults
    /// The next insertion order to hand out; grows for the node's lifetime.
    var nextInsertionOrder: UInt64

    init(name: String, addresses: [IPAddress]) {
        self.name = name
        self.addresses = addresses
        statistics = XfrmStatistic.zeroed
        isReachable = true
        securityAssociationDatabase = [:]
        policyDatabase = [:]
        faults = PendingFaults()
        nextInsertionOrder = 1
    }

    /// Every SA on the node, ours and foreign, oldest first, keys as fingerprints.
    public var securityAssociations: [SecurityAssociation] {
        securityAssociationDatabase.values.sorted { $0.insertionOrder < $1.insertionOrder }.map(\.reported)
    }

    /// Every policy on the node, ours and foreign, in order of precedence within each direction.
    public var policies: [SecurityPolicy] {
        policyDatabase.values.sorted {
            ($0.direction, $0.priority, $0.insertionOrder) < ($1.direction, $1.priority, $1.insertionOrder)
        }
        .map(\.reported)
    }

    /// The node's first address of `family`.
    public func address(of family: AddressFamily) -> IPAddress? {
        addresses.first { $0.family == family }
    }

    /// Re-image: every SA and policy (ours and foreign) and every statistic is gone. Addresses,
    /// reachability and pending faults stay.
    mutating func wipe() {
        securityAssociationDatabase = [:]
        policyDatabase = [:]
        statistics = XfrmStatistic.zeroed
    }

    mutating func count(_ statistic: XfrmStatistic) {
        statistics[statistic.rawValue, default: 0] += 1
    }

    mutating func takeInsertionOrder() -> UInt64 {
        defer { nextInsertionOrder += 1 }
        return nextInsertionOrder
    }
}

/// Faults injected into a node's next operations.
struct PendingFaults: Sendable, Hashable, Codable {
    /// One scheduled failure: the operation with this ordinal fails with `errno` and has no effect.
    struct ScheduledFailure: Sendable, Hashable, Codable {
        var operation: UInt64
        var errno: Int32
    }

    /// Operations that reached the node so far (applied, refused or failed).
    var operationsReceived: UInt64 = 0
    var failures: [ScheduledFailure] = []
    /// When set, the node answers this many more operations and then stops answering.
    var answersLeft: Int?
}
