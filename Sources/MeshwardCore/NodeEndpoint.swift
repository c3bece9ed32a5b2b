/// How the controller reaches a node's kernel, as a spec's `endpoint` says: one type for the
/// spec, the Store's remembered endpoints and the kernel connectors. Resolving an endpoint to a
/// kernel goes through the connector of its scheme (`EndpointKernels`).
public enum NodeEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// The simulated kernel, kept in the state directory.
    case sim
    /// The kernel of the machine the controller runs on.
    case local
    /// The kernel seen from a named network namespace (`/var/run/netns/NAME`) on this machine.
    case namespace(String)

    /// Parses the spec spelling: `sim`, `local` or `netns:NAME`; nil for anything else.
    ///
    /// A namespace name is 1 to 255 characters of letters, digits, `.`, `_` and `-`, and not `.`
    /// or `..`, so it names a file in `/var/run/netns` and nothing else.
    public init?(_ text: String) {
        switch text {
        case "sim": self = .sim
        case "local": self = .local
        default:
            guard text.hasPrefix("netns:") else { return nil }
            let name = String(text.dropFirst("netns:".count))
            guard NodeEndpoint.isValidNamespaceName(name) else { return nil }
            self = .namespace(name)
        }
    }

    /// True when `name` can name a network namespace under `/var/run/netns`.
    public static func isValidNamespaceName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255, name != ".", name != ".." else { return false }
        return name.unicodeScalars.allSatisfy { scalar in
            (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9")
                || scalar == "." || scalar == "_" || scalar == "-"
        }
    }

    /// The scheme of an endpoint: which connector opens its kernel.
    public enum Scheme: String, Sendable, Hashable, CaseIterable {
        case sim
        case local
        case netns
    }

    /// The endpoint's scheme.
    public var scheme: Scheme {
        switch self {
        case .sim: .sim
        case .local: .local
        case .namespace: .netns
        }
    }

    /// The spec spelling: `sim`, `local` or `netns:NAME`.
    public var description: String {
        switch self {
        case .sim: "sim"
        case .local: "local"
        case .namespace(let name): "netns:\(name)"
        }
    }
}
