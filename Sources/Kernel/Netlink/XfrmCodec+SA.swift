import MeshwardCore

extension XfrmCodec {
    /// Appends `XFRM_MSG_NEWSA` for `sa`: `xfrm_usersa_info` (ESP, transport mode, unlimited
    /// lifetimes, host-to-host selector), the algorithm attributes, `XFRMA_REPLAY_ESN_VAL` when
    /// ESN is on (the legacy `replay_window` then 0, as the kernel demands) or the window does
    /// not fit 8 bits, and `XFRMA_SA_EXTRA_FLAGS` when `extraFlags` is not 0.
    ///
    /// Throws `XfrmEncodingError` (and appends nothing) when the key is only a fingerprint or
    /// its length does not fit the cipher.
    static func appendNewSA(
        _ sa: SecurityAssociation, extraFlags: UInt32 = 0, flags: UInt16, sequence: UInt32,
        into buffer: inout NetlinkBuffer
    ) throws {
        guard let key = sa.key.material else {
            throw XfrmEncodingError("the SA's key is known only by its fingerprint; the kernel needs the bytes")
        }
        guard sa.source.family == sa.destination.family else {
            throw XfrmEncodingError("source \(sa.source) and destination \(sa.destination) differ in family")
        }
        let algorithms = try XfrmAlgorithm.algorithms(for: sa.cipher, key: key.bytes)
        let useESNAttribute = sa.extendedSequenceNumbers || sa.replayWindow > UInt32(UInt8.max)
        buffer.appendMessage(type: newSA, flags: flags, sequence: sequence) { body in
            let info = body.appendZeros(usersaInfoSize)
            setHostSelector(source: sa.source, destination: sa.destination, into: &body, at: info)
            setAddress(sa.destination, into: &body, at: info + 56)
            body.setBigEndianUInt32(sa.spi.rawValue, at: info + 72)
            body.setUInt8(protocolESP, at: info + 76)
            setAddress(sa.source, into: &body, at: info + 80)
            setUnlimitedLifetime(into: &body, at: info + 96)
            body.setUInt32(sa.reqid.rawValue, at: info + 208)
            body.setUInt16(familyNumber(sa.family), at: info + 212)
            body.setUInt8(modeTransport, at: info + 214)
            body.setUInt8(useESNAttribute ? 0 : UInt8(sa.replayWindow), at: info + 215)
            body.setUInt8(sa.extendedSequenceNumbers ? stateFlagESN : 0, at: info + 216)
            for algorithm in algorithms { appendAlgorithm(algorithm, into: &body) }
            if useESNAttribute {
                let words = Int((sa.replayWindow + 31) / 32)
                body.appendAttribute(type: attributeReplayESN) { esn in
                    let start = esn.appendZeros(replayESNSize + words * 4)
                    esn.setUInt32(UInt32(words), at: start)
                    esn.setUInt32(sa.replayWindow, at: start + 20)
                }
            }
            if extraFlags != 0 {
                body.appendAttribute(type: attributeExtraFlags) { extra in
                    extra.setUInt32(extraFlags, at: extra.appendZeros(4))
                }
            }
        }
    }

    /// Appends `XFRM_MSG_DELSA` for `identifier` (`xfrm_usersa_id`, ESP).
    static func appendDeleteSA(
        _ identifier: SAIdentifier, flags: UInt16, sequence: UInt32,
        into buffer: inout NetlinkBuffer
    ) {
        buffer.appendMessage(type: deleteSA, flags: flags, sequence: sequence) { body in
            let start = body.appendZeros(usersaIDSize)
            setAddress(identifier.destination, into: &body, at: start)
            body.setBigEndianUInt32(identifier.spi.rawValue, at: start + 16)
            body.setUInt16(familyNumber(identifier.destination.family), at: start + 20)
            body.setUInt8(protocolESP, at: start + 22)
        }
    }

    /// Appends the `XFRM_MSG_GETSA` dump request. It has no payload: the kernel parses what
    /// follows the header as filter attributes, strictly.
    static func appendDumpSAs(sequence: UInt32, into buffer: inout NetlinkBuffer) {
        buffer.appendMessage(type: getSA, flags: NetlinkHeader.request | NetlinkHeader.dump, sequence: sequence) { _ in
        }
    }

    /// Decodes the payload of an `XFRM_MSG_NEWSA` message (`xfrm_usersa_info` and attributes).
    static func decodeSA(_ payload: NetlinkReader) throws -> XfrmSARecord {
        let info = try payload.slice(0, usersaInfoSize, context: "xfrm_usersa_info")
        let family = try family(number: try info.uint16(212, "family"), context: "xfrm_usersa_info")
        let attributes = try NetlinkAttributes(try payload.tail(from: usersaInfoSize, context: "SA attributes"))
        var algorithms: [XfrmAlgorithm] = []
        for kind in [XfrmAlgorithm.Kind.aead, .crypt, .authTruncated, .auth] {
            if let attribute = attributes[kind.attribute] {
                algorithms.append(try algorithm(attribute, kind: kind))
            }
        }
        let esnWindow = try attributes[attributeReplayESN].map { try $0.uint32(20, "replay_window") }
        let extraFlags = try attributes[attributeExtraFlags].map { try $0.uint32(0, "extra flags") } ?? 0
        return XfrmSARecord(
            source: try address(info, at: 80, family: family, "saddr"),
            destination: try address(info, at: 56, family: family, "id.daddr"),
            spi: SPI(try info.bigEndianUInt32(72, "id.spi")),
            protocolNumber: try info.uint8(76, "id.proto"),
            mode: try info.uint8(214, "mode"),
            reqid: Reqid(try info.uint32(208, "reqid")),
            legacyReplayWindow: try info.uint8(215, "replay_window"),
            flags: try info.uint8(216, "flags"),
            esnReplayWindow: esnWindow,
            extraFlags: extraFlags,
            algorithms: algorithms,
            counters: SACounters(
                bytes: try info.uint64(160, "curlft.bytes"), packets: try info.uint64(168, "curlft.packets"),
                addTime: try info.uint64(176, "curlft.add_time"), useTime: try info.uint64(184, "curlft.use_time")),
            isMarked: try isMarked(attributes))
    }

    /// True when an `XFRMA_MARK` with a non-zero value or mask, or a non-zero `XFRMA_IF_ID`, is present.
    static func isMarked(_ attributes: NetlinkAttributes) throws -> Bool {
        if let mark = attributes[attributeMark] {
            if try mark.uint32(0, "mark.v") != 0 || mark.uint32(4, "mark.m") != 0 { return true }
        }
        if let interface = attributes[attributeInterfaceID], try interface.uint32(0, "if_id") != 0 { return true }
        return false
    }
}

extension XfrmCodec {
    /// Decodes an `xfrm_usersa_id` (the payload of `XFRM_MSG_DELSA`).
    static func decodeSAIdentifier(_ payload: NetlinkReader) throws -> SAIdentifier {
        let raw = try payload.slice(0, usersaIDSize, context: "xfrm_usersa_id")
        let family = try family(number: try raw.uint16(20, "family"), context: "xfrm_usersa_id")
        return SAIdentifier(
            destination: try address(raw, at: 0, family: family, "daddr"),
            spi: SPI(try raw.bigEndianUInt32(16, "spi")))
    }
}
