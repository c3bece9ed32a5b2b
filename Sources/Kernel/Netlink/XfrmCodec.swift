import MeshwardCore

/// Encodes Meshward's kernel operations as `NETLINK_XFRM` messages and decodes the kernel's
/// dumps, by explicit offsets that match `include/uapi/linux/xfrm.h` on Linux.
///
/// Encoding writes into a `NetlinkBuffer` so that a batch of many messages shares one buffer.
/// Decoding checks every length against the bytes it has and throws `NetlinkDecodingError` on
/// anything truncated or malformed; it never traps.
enum XfrmCodec {
    // Message types (`XFRM_MSG_*`).
    static let newSA: UInt16 = 16
    static let deleteSA: UInt16 = 17
    static let getSA: UInt16 = 18
    static let newPolicy: UInt16 = 19
    static let deletePolicy: UInt16 = 20
    static let getPolicy: UInt16 = 21
    static let updatePolicy: UInt16 = 25
    static let updateSA: UInt16 = 26

    // Attribute types (`XFRMA_*`).
    static let attributeAuth: UInt16 = 1
    static let attributeCrypt: UInt16 = 2
    static let attributeTemplate: UInt16 = 5
    static let attributePolicyType: UInt16 = 16
    static let attributeAEAD: UInt16 = 18
    static let attributeAuthTrunc: UInt16 = 20
    static let attributeMark: UInt16 = 21
    static let attributeReplayESN: UInt16 = 23
    static let attributeExtraFlags: UInt16 = 24
    static let attributeInterfaceID: UInt16 = 31

    // Structure sizes (x86_64 and every other Linux ABI: no member depends on the word size).
    static let selectorSize = 56
    static let lifetimeConfigSize = 64
    static let usersaInfoSize = 224
    static let usersaIDSize = 24
    static let userpolicyInfoSize = 168
    static let userpolicyIDSize = 64
    static let userTemplateSize = 64
    static let algorithmNameSize = 64
    static let replayESNSize = 24

    // Field values.
    static let protocolESP: UInt8 = 50  // IPPROTO_ESP
    static let modeTransport: UInt8 = 0  // XFRM_MODE_TRANSPORT
    static let actionAllow: UInt8 = 0  // XFRM_POLICY_ALLOW
    static let stateFlagESN: UInt8 = 128  // XFRM_STATE_ESN
    static let policyTypeMain: UInt8 = 0  // XFRM_POLICY_TYPE_MAIN
    /// `XFRM_INF`: no lifetime limit.
    static let infinite: UInt64 = .max

    static let familyIPv4: UInt16 = 2  // AF_INET
    static let familyIPv6: UInt16 = 10  // AF_INET6

    static func familyNumber(_ family: AddressFamily) -> UInt16 {
        family == .ipv4 ? familyIPv4 : familyIPv6
    }

    static func family(number: UInt16, context: String) throws -> AddressFamily {
        switch number {
        case familyIPv4: return .ipv4
        case familyIPv6: return .ipv6
        default: throw NetlinkDecodingError(context, "address family \(number) is neither AF_INET nor AF_INET6")
        }
    }

    static func directionNumber(_ direction: PolicyDirection) -> UInt8 {
        switch direction {
        case .inbound: 0
        case .outbound: 1
        case .forward: 2
        }
    }

    /// The direction of a `dir` field; nil for per-socket policies and anything else.
    static func direction(number: UInt8) -> PolicyDirection? {
        switch number {
        case 0: .inbound
        case 1: .outbound
        case 2: .forward
        default: nil
        }
    }

    /// Writes an address into a 16-byte `xfrm_address_t` (IPv4 in the first four bytes).
    static func setAddress(_ address: IPAddress, into buffer: inout NetlinkBuffer, at offset: Int) {
        buffer.setBytes(address.bytes, at: offset)
    }

    /// Reads an `xfrm_address_t` of `family`.
    static func address(
        _ reader: NetlinkReader, at offset: Int, family: AddressFamily,
        _ what: String
    ) throws -> IPAddress {
        let bytes = try reader.byteArray(offset, family.addressLength, what)
        guard let address = IPAddress(bytes: bytes) else {
            throw NetlinkDecodingError(reader.context, "\(what) is not an address")
        }
        return address
    }

    /// Writes an `xfrm_lifetime_cfg` with every limit at `XFRM_INF` and no expiry, as iproute2
    /// and strongSwan do (a byte limit of 0 would expire the SA at once).
    static func setUnlimitedLifetime(into buffer: inout NetlinkBuffer, at offset: Int) {
        for index in 0..<4 { buffer.setUInt64(infinite, at: offset + index * 8) }
    }

    /// Writes the payload of an `XFRMA_*` attribute verbatim.
    static func appendAttribute(_ type: UInt16, bytes: [UInt8], into buffer: inout NetlinkBuffer) {
        buffer.appendAttribute(type: type) { body in
            let offset = body.appendZeros(bytes.count)
            body.setBytes(bytes, at: offset)
        }
    }
}
