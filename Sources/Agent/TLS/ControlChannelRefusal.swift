/// Why the control channel's TLS policy, or the peer check behind it, refused a handshake.
/// The refusing side logs the description and counts the `reason`.
public enum ControlChannelRefusal: Sendable, Equatable, CustomStringConvertible {
    /// The client offered no TLS 1.3 (the versions it offered, as wire codes).
    case version(offered: [UInt16])
    /// The client offered TLS 1.3 but no X25519MLKEM768 (the groups it offered).
    case keyExchange(offered: [UInt16])
    /// The client's certificate was refused (the peer check's words).
    case certificate(String)
    /// What arrived was not a TLS handshake.
    case notTLS

    /// The bounded label the agent's metrics count refusals by.
    public var reason: HandshakeRefusalReason {
        switch self {
        case .version: .tlsVersion
        case .keyExchange: .keyExchange
        case .certificate: .certificate
        case .notTLS: .notTLS
        }
    }

    public var description: String {
        switch self {
        case .version(let offered):
            "the client offered \(Self.list(offered.map(ControlChannelTLS.versionName))) only; "
                + ControlChannelTLS.requirement
        case .keyExchange(let offered):
            "the client offered the key exchange \(Self.list(offered.map(ControlChannelTLS.groupName))) only; "
                + ControlChannelTLS.requirement
        case .certificate(let reason):
            reason
        case .notTLS:
            "the client did not begin a TLS handshake; " + ControlChannelTLS.requirement
        }
    }

    private static func list(_ names: [String]) -> String {
        names.isEmpty ? "nothing" : names.joined(separator: ", ")
    }
}

/// Why a handshake was refused, as the agent's metrics label it
/// (`meshward_agent_handshakes_refused_total{reason}`): a bounded set.
public enum HandshakeRefusalReason: String, Sendable, Hashable, CaseIterable {
    /// No TLS 1.3 offered (a TLS 1.2 client).
    case tlsVersion = "tls-version"
    /// TLS 1.3 without X25519MLKEM768 (a classical-only key exchange).
    case keyExchange = "key-exchange"
    /// The client's certificate was refused: another CA, another identity, expired, revoked.
    case certificate
    /// Not a TLS handshake at all.
    case notTLS = "not-tls"
}
