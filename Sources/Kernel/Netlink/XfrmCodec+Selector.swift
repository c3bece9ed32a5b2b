import MeshwardCore

extension XfrmCodec {
    /// Writes an `xfrm_selector` (56 bytes) at `offset`: addresses, prefix lengths, protocol and
    /// ports (network order, mask `0xffff` when a port is given).
    static func setSelector(_ selector: PolicySelector, into buffer: inout NetlinkBuffer, at offset: Int) {
        setAddress(selector.destination.address, into: &buffer, at: offset)
        setAddress(selector.source.address, into: &buffer, at: offset + 16)
        if let port = selector.traffic.destinationPort {
            buffer.setBigEndianUInt16(port, at: offset + 32)
            buffer.setUInt16(0xFFFF, at: offset + 34)
        }
        if let port = selector.traffic.sourcePort {
            buffer.setBigEndianUInt16(port, at: offset + 36)
            buffer.setUInt16(0xFFFF, at: offset + 38)
        }
        buffer.setUInt16(familyNumber(selector.family), at: offset + 40)
        buffer.setUInt8(UInt8(selector.destination.length), at: offset + 42)
        buffer.setUInt8(UInt8(selector.source.length), at: offset + 43)
        buffer.setUInt8(selector.traffic.transport?.number ?? 0, at: offset + 44)
    }

    /// Writes a host-to-host selector for a transport-mode SA, as strongSwan does.
    static func setHostSelector(
        source: IPAddress, destination: IPAddress, into buffer: inout NetlinkBuffer,
        at offset: Int
    ) {
        setSelector(
            PolicySelector(source: IPPrefix(host: source), destination: IPPrefix(host: destination)),
            into: &buffer, at: offset)
    }

    /// Reads an `xfrm_selector`. Throws when it cannot be expressed as a `PolicySelector`: an
    /// unknown family or protocol, a prefix length out of range, a partial port mask, ports
    /// without a protocol, or an interface index.
    static func selector(_ reader: NetlinkReader, at offset: Int) throws -> PolicySelector {
        let raw = try reader.slice(offset, selectorSize, context: "xfrm_selector")
        let family = try family(number: try raw.uint16(40, "family"), context: "xfrm_selector")
        let destination = try address(raw, at: 0, family: family, "daddr")
        let source = try address(raw, at: 16, family: family, "saddr")
        let destinationLength = Int(try raw.uint8(42, "prefixlen_d"))
        let sourceLength = Int(try raw.uint8(43, "prefixlen_s"))
        guard let destinationPrefix = IPPrefix(address: destination, length: destinationLength),
            let sourcePrefix = IPPrefix(address: source, length: sourceLength)
        else {
            throw NetlinkDecodingError(
                "xfrm_selector", "prefix length \(destinationLength) or \(sourceLength) is out of range for \(family)")
        }
        let protocolNumber = try raw.uint8(44, "proto")
        let destinationPort = try port(raw, value: 32, mask: 34, "dport")
        let sourcePort = try port(raw, value: 36, mask: 38, "sport")
        let interfaceIndex = try raw.int32(48, "ifindex")
        guard interfaceIndex == 0 else {
            throw NetlinkDecodingError("xfrm_selector", "selects interface \(interfaceIndex)")
        }
        let traffic: TrafficMatch
        if protocolNumber == 0 {
            guard destinationPort == nil, sourcePort == nil else {
                throw NetlinkDecodingError("xfrm_selector", "has ports but no protocol")
            }
            traffic = .any
        } else {
            guard let transport = TransportProtocol.allCases.first(where: { $0.number == protocolNumber }) else {
                throw NetlinkDecodingError("xfrm_selector", "protocol \(protocolNumber) is not one Meshward writes")
            }
            traffic = TrafficMatch(transport: transport, sourcePort: sourcePort, destinationPort: destinationPort)
        }
        return PolicySelector(source: sourcePrefix, destination: destinationPrefix, traffic: traffic)
    }

    private static func port(_ raw: NetlinkReader, value: Int, mask: Int, _ what: String) throws -> UInt16? {
        let portMask = try raw.uint16(mask, "\(what)_mask")
        switch portMask {
        case 0: return nil
        case 0xFFFF: return try raw.bigEndianUInt16(value, what)
        default: throw NetlinkDecodingError("xfrm_selector", "\(what) mask \(portMask) is partial")
        }
    }
}
