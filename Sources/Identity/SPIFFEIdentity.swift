/// Who a certificate speaks for, as its SPIFFE URI says: `spiffe://CLUSTER/node/NAME` for the
/// agent of one node, `spiffe://CLUSTER/controller` for a controller of the cluster.
public enum SPIFFEIdentity: Sendable, Hashable, CustomStringConvertible {
    case node(cluster: String, name: String)
    case controller(cluster: String)

    /// Parses a SPIFFE URI; nil for anything that is not one of the two forms above.
    public init?(uri: String) {
        let prefix = "spiffe://"
        guard uri.hasPrefix(prefix) else { return nil }
        let parts = uri.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch parts.count {
        case 2 where parts[1] == "controller" && !parts[0].isEmpty:
            self = .controller(cluster: parts[0])
        case 3 where parts[1] == "node" && !parts[0].isEmpty && !parts[2].isEmpty:
            self = .node(cluster: parts[0], name: parts[2])
        default:
            return nil
        }
    }

    /// The cluster the identity belongs to.
    public var cluster: String {
        switch self {
        case .node(let cluster, _), .controller(let cluster): cluster
        }
    }

    /// The SPIFFE URI.
    public var uri: String {
        switch self {
        case .node(let cluster, let name): "spiffe://\(cluster)/node/\(name)"
        case .controller(let cluster): "spiffe://\(cluster)/controller"
        }
    }

    public var description: String { uri }
}
