import MeshwardCore

/// One node of the fleet as the spec declares it.
public struct NodeIntent: Sendable, Hashable, CustomStringConvertible {
    /// The node's name, unique in the fleet.
    public let name: String
    /// At most one IPv4 and one IPv6 address, IPv4 first; always unicast host addresses.
    public let addresses: [IPAddress]
    /// The node's labels, which flows select on.
    public let labels: [String: String]
    /// How the controller reaches this node's kernel (the node's own setting, else the default).
    public let endpoint: NodeEndpoint

    /// Creates a node; `addresses` are sorted.
    public init(name: String, addresses: [IPAddress], labels: [String: String] = [:], endpoint: NodeEndpoint = .sim) {
        self.name = name
        self.addresses = addresses.sorted()
        self.labels = labels
        self.endpoint = endpoint
    }

    /// The node's address in `family`, or nil when it has none.
    public func address(for family: AddressFamily) -> IPAddress? {
        addresses.first { $0.family == family }
    }

    /// The address families the node has an address in.
    public var families: [AddressFamily] { addresses.map(\.family) }

    /// `name (addresses)`.
    public var description: String {
        "\(name) (\(addresses.map(\.description).joined(separator: ", ")))"
    }
}
