/// What a TLS client offered in its ClientHello, as read off the wire before the handshake:
/// the versions (the `supported_versions` extension, or the record's legacy version when the
/// client sent none, as a TLS 1.2 client does) and the key exchange groups
/// (`supported_groups`), as IANA code points.
public struct TLSClientOffer: Sendable, Equatable {
    public var versions: [UInt16]
    public var groups: [UInt16]

    public init(versions: [UInt16], groups: [UInt16]) {
        self.versions = versions
        self.groups = groups
    }
}

/// What a TLS server chose in its ServerHello, as read off the wire: the version (the
/// `supported_versions` extension, else the legacy version) and, for TLS 1.3, the key exchange
/// group of its `key_share`. Read from the connection's own bytes, not from the configuration:
/// what `status` shows is what the connection negotiated.
public struct TLSNegotiation: Sendable, Equatable, Codable {
    /// The version's wire code (0x0304 for TLS 1.3).
    public var version: UInt16
    /// The key exchange group's code point (0x11EC for X25519MLKEM768); nil when the
    /// ServerHello named none (TLS 1.2 carries it in a later message).
    public var group: UInt16?

    public init(version: UInt16, group: UInt16?) {
        self.version = version
        self.group = group
    }

    /// `TLSv1.3`, as `status` prints it.
    public var versionName: String { ControlChannelTLS.versionName(version) }
    /// `X25519MLKEM768`, as IANA's registry spells it; `unknown` when the hello named none.
    public var groupName: String { group.map(ControlChannelTLS.groupName) ?? "unknown" }
}
