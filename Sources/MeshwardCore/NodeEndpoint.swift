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
    /// The kernel of another host, served by `meshward agent run` there over mutual TLS. A nil
    /// host is the node's first address (`endpoint: agent`).
    case agent(host: String?, port: UInt16)

    /// The port an agent listens on unless told otherwise.
    public static let defaultAgentPort: UInt16 = 7443

    /// Parses the spec spelling: `sim`, `local`, `netns:NAME`, `agent` or `agent:HOST[:PORT]`;
    /// nil for anything else.
    ///
    /// A namespace name is 1 to 255 characters of letters, digits, `.`, `_` and `-`, and not `.`
    /// or `..`, so it names a file in `/var/run/netns` and nothing else. An agent's HOST is an
    /// IPv4 address, a DNS name, or an IPv6 address, in brackets when a port follows
    /// (`agent:[2001:db8::10]:7443`); PORT is 1 to 65535 and defaults to 7443.
    public init?(_ text: String) {
        switch text {
        case "sim": self = .sim
        case "local": self = .local
        case "agent": self = .agent(host: nil, port: Self.defaultAgentPort)
        default:
            if text.hasPrefix("agent:") {
                guard let (host, port) = Self.parseHostPort(String(text.dropFirst("agent:".count))) else { return nil }
                self = .agent(host: host, port: port)
                return
            }
            guard text.hasPrefix("netns:") else { return nil }
            let name = String(text.dropFirst("netns:".count))
            guard NodeEndpoint.isValidNamespaceName(name) else { return nil }
            self = .namespace(name)
        }
    }

    /// Parses `HOST`, `HOST:PORT`, `[IPV6]`, `[IPV6]:PORT` or a bare IPv6 address; nil when
    /// malformed. The port defaults to 7443.
    public static func parseHostPort(_ text: String, defaultPort: UInt16 = defaultAgentPort) -> (String, UInt16)? {
        func port(_ digits: Substring) -> UInt16? {
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
                let value = UInt16(digits), value > 0
            else { return nil }
            return value
        }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            guard let address = IPAddress(host), address.family == .ipv6 else { return nil }
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { return (host, defaultPort) }
            guard rest.hasPrefix(":"), let value = port(rest.dropFirst()) else { return nil }
            return (host, value)
        }
        if let address = IPAddress(text), address.family == .ipv6 { return (text, defaultPort) }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let hostPart = parts.first, isValidHostName(hostPart) else { return nil }
        if parts.count == 1 { return (String(hostPart), defaultPort) }
        guard let value = port(parts[1]) else { return nil }
        return (String(hostPart), value)
    }

    /// True for an IPv4 address or a DNS name of letters, digits, `-` and `.`.
    static func isValidHostName(_ name: Substring) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253, !name.hasPrefix("."), !name.hasPrefix("-") else { return false }
        return name.unicodeScalars.allSatisfy { scalar in
            (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9")
                || scalar == "." || scalar == "-"
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
        case agent
    }

    /// The endpoint's scheme.
    public var scheme: Scheme {
        switch self {
        case .sim: .sim
        case .local: .local
        case .namespace: .netns
        case .agent: .agent
        }
    }

    /// The spec spelling: `sim`, `local`, `netns:NAME`, `agent` or `agent:HOST:PORT`.
    public var description: String {
        switch self {
        case .sim: "sim"
        case .local: "local"
        case .namespace(let name): "netns:\(name)"
        case .agent(nil, _): "agent"
        case .agent(let host?, let port):
            host.contains(":") ? "agent:[\(host)]:\(port)" : "agent:\(host):\(port)"
        }
    }
}
