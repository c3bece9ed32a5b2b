import MeshwardCore

/// Reads a flow's `ports` entries: `tcp/8080`, `udp/53`, `sctp/9000`, `tcp` (every tcp port),
/// `icmp`, `icmpv6`.
enum PortSpec {
    /// The forward-direction match of `text` (destination port set), or a message saying what is wrong.
    static func parse(_ text: String) -> Result<TrafficMatch, PortSpecError> {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let protocolName = String(parts[0])
        guard let transport = TransportProtocol(rawValue: protocolName) else {
            let known = TransportProtocol.allCases.map(\.rawValue).joined(separator: ", ")
            return .failure(
                .init(
                    "unknown protocol '\(protocolName)' in port '\(text)'; use one of \(known), "
                        + "as in 'tcp/8080' or 'icmp'"))
        }
        guard parts.count == 2 else { return .success(TrafficMatch(transport: transport)) }
        let portText = String(parts[1])
        guard transport.hasPorts else {
            return .failure(.init("'\(transport)' has no ports; write '\(transport)' alone"))
        }
        if portText.contains("-") || portText.contains(":") {
            return .failure(
                .init("port ranges are not supported in '\(text)'; list each port, e.g. '\(transport)/8080'"))
        }
        guard !portText.isEmpty, portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return .failure(
                .init("malformed port '\(text)': '\(portText)' is not a number; write e.g. '\(transport)/8080'"))
        }
        guard portText.utf8.count <= 5, let port = Int(portText), (1...65535).contains(port) else {
            return .failure(.init("port \(portText) in '\(text)' is out of range; ports are 1 to 65535"))
        }
        return .success(TrafficMatch(transport: transport, destinationPort: UInt16(port)))
    }
}

/// Why a port entry could not be read.
struct PortSpecError: Error, Equatable {
    let message: String
    init(_ message: String) { self.message = message }
}
