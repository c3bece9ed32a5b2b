import Kernel
import MeshwardCore

/// The whole simulated fleet as a value: every node with its addresses, SA and policy
/// databases, XFRM statistics, reachability and pending faults, plus the fleet's clock.
///
/// Keys are never held: an SA keeps only `KeyMaterial.fingerprint`, so an encoded state (the
/// file `endpoint: sim` persists) never contains key bytes.
public struct SimulatedFleetState: Sendable, Hashable {
    /// The nodes by name.
    public internal(set) var nodes: [String: SimulatedNode]
    /// The fleet's clock in seconds since the epoch: SAs' `addTime` and `useTime` read it.
    /// Tests set it; nothing advances it on its own.
    public var currentTime: UInt64
    /// Which node holds each address; rebuilt from `nodes`, never persisted.
    var addressOwners: [IPAddress: String]

    /// The bytes one simulated packet adds to an SA's byte counter.
    public static let bytesPerPacket: UInt64 = 100

    /// The version of the JSON format (`Codable`) that earlier Meshward versions saved the fleet
    /// in; the fleet file is SQLite now (`SimulatedFleetFile`), and the JSON is read to migrate.
    static let formatVersion = 1

    /// An empty fleet.
    public init(currentTime: UInt64 = 0) {
        nodes = [:]
        self.currentTime = currentTime
        addressOwners = [:]
    }

    /// Adds a node with `addresses`, or, when it exists, sets its addresses (its databases stay).
    /// An address held by another node moves to this one.
    public mutating func addNode(_ name: String, addresses: [IPAddress]) {
        for address in addresses {
            if let owner = addressOwners[address], owner != name {
                nodes[owner]?.addresses.removeAll { $0 == address }
            }
        }
        if nodes[name] == nil {
            nodes[name] = SimulatedNode(name: name, addresses: addresses)
        } else {
            nodes[name]?.addresses = addresses
        }
        rebuildAddressIndex()
    }

    /// Removes a node and everything in its kernel.
    public mutating func removeNode(_ name: String) {
        nodes[name] = nil
        rebuildAddressIndex()
    }

    /// The fleet with only the nodes named in `names`, at the same clock: a share of the fleet
    /// for a process that simulates some of its nodes.
    public func restricted(to names: Set<String>) -> SimulatedFleetState {
        var share = self
        share.nodes = nodes.filter { names.contains($0.key) }
        share.rebuildAddressIndex()
        return share
    }

    /// The name of the node that holds `address`, if any.
    public func node(holding address: IPAddress) -> String? {
        addressOwners[address]
    }

    /// Reboot or re-image: every SA and policy of the node (ours and foreign) and its statistics
    /// are gone. Its addresses stay. No effect for an unknown node.
    public mutating func wipe(node: String) {
        nodes[node]?.wipe()
    }

    mutating func rebuildAddressIndex() {
        addressOwners = [:]
        for (name, node) in nodes {
            for address in node.addresses { addressOwners[address] = name }
        }
    }
}
