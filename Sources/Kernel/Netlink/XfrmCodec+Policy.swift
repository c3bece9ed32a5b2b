import MeshwardCore

extension XfrmCodec {
    /// Appends `XFRM_MSG_NEWPOLICY` (or `XFRM_MSG_UPDPOLICY` with `type: updatePolicy`) for
    /// `policy`: `xfrm_userpolicy_info` (action allow, the model's priority, index 0 so the
    /// kernel picks one, unlimited lifetimes) and one `XFRMA_TMPL`.
    ///
    /// The template is ESP in transport mode with the policy's reqid; an outbound template pins
    /// its SPI, an inbound one carries SPI 0; `optional` mirrors `isOptional`; the algorithm
    /// masks are `~0` as iproute2 writes them.
    static func appendPolicy(
        _ policy: SecurityPolicy, type: UInt16, flags: UInt16, sequence: UInt32,
        into buffer: inout NetlinkBuffer
    ) {
        buffer.appendMessage(type: type, flags: flags, sequence: sequence) { body in
            let info = body.appendZeros(userpolicyInfoSize)
            setSelector(policy.selector, into: &body, at: info)
            setUnlimitedLifetime(into: &body, at: info + 56)
            body.setUInt32(policy.priority, at: info + 152)
            body.setUInt8(directionNumber(policy.direction), at: info + 160)
            body.setUInt8(actionAllow, at: info + 161)
            body.appendAttribute(type: attributeTemplate) { attribute in
                appendTemplate(policy.template, family: policy.selector.family, into: &attribute)
            }
        }
    }

    private static func appendTemplate(
        _ template: PolicyTemplate, family: AddressFamily, into buffer: inout NetlinkBuffer
    ) {
        let start = buffer.appendZeros(userTemplateSize)
        setAddress(template.destination, into: &buffer, at: start)
        buffer.setBigEndianUInt32(template.spi?.rawValue ?? 0, at: start + 16)
        buffer.setUInt8(protocolESP, at: start + 20)
        buffer.setUInt16(familyNumber(family), at: start + 24)
        setAddress(template.source, into: &buffer, at: start + 28)
        buffer.setUInt32(template.reqid.rawValue, at: start + 44)
        buffer.setUInt8(modeTransport, at: start + 48)
        buffer.setUInt8(template.isOptional ? 1 : 0, at: start + 50)
        buffer.setUInt32(.max, at: start + 52)
        buffer.setUInt32(.max, at: start + 56)
        buffer.setUInt32(.max, at: start + 60)
    }

    /// Appends `XFRM_MSG_DELPOLICY` for `identifier` (`xfrm_userpolicy_id` by selector and direction).
    static func appendDeletePolicy(
        _ identifier: PolicyIdentifier, flags: UInt16, sequence: UInt32,
        into buffer: inout NetlinkBuffer
    ) {
        buffer.appendMessage(type: deletePolicy, flags: flags, sequence: sequence) { body in
            let start = body.appendZeros(userpolicyIDSize)
            setSelector(identifier.selector, into: &body, at: start)
            body.setUInt8(directionNumber(identifier.direction), at: start + 60)
        }
    }

    /// Appends the `XFRM_MSG_GETPOLICY` dump request (no payload, as for SAs).
    static func appendDumpPolicies(sequence: UInt32, into buffer: inout NetlinkBuffer) {
        buffer.appendMessage(type: getPolicy, flags: NetlinkHeader.request | NetlinkHeader.dump, sequence: sequence) {
            _ in
        }
    }

    /// Decodes the payload of an `XFRM_MSG_NEWPOLICY` message (`xfrm_userpolicy_info` and
    /// attributes). A selector the model cannot express is not an error (foreign policies may
    /// have any selector); truncated structures are.
    static func decodePolicy(_ payload: NetlinkReader) throws -> XfrmPolicyRecord {
        let info = try payload.slice(0, userpolicyInfoSize, context: "xfrm_userpolicy_info")
        let attributes = try NetlinkAttributes(try payload.tail(from: userpolicyInfoSize, context: "policy attributes"))
        var selector: PolicySelector?
        var problem: String?
        do {
            selector = try self.selector(info, at: 0)
        } catch let error as NetlinkDecodingError {
            problem = error.description
        }
        var templates: [XfrmTemplateRecord] = []
        if let attribute = attributes[attributeTemplate] {
            guard attribute.count % userTemplateSize == 0 else {
                throw NetlinkDecodingError(
                    "XFRMA_TMPL", "length \(attribute.count) is not a multiple of \(userTemplateSize)")
            }
            for index in 0..<(attribute.count / userTemplateSize) {
                templates.append(
                    try template(
                        try attribute.slice(
                            index * userTemplateSize, userTemplateSize,
                            context: "xfrm_user_tmpl")))
            }
        }
        let policyType = try attributes[attributePolicyType].map { try $0.uint8(0, "xfrm_userpolicy_type.type") }
        return XfrmPolicyRecord(
            selector: selector, selectorProblem: problem,
            directionNumber: try info.uint8(160, "dir"),
            priority: try info.uint32(152, "priority"),
            index: try info.uint32(156, "index"),
            action: try info.uint8(161, "action"),
            policyType: policyType ?? policyTypeMain,
            templates: templates,
            isMarked: try isMarked(attributes))
    }

    private static func template(_ raw: NetlinkReader) throws -> XfrmTemplateRecord {
        // A foreign template may carry any family; it is recorded, not rejected.
        let family = try? family(number: try raw.uint16(24, "family"), context: "xfrm_user_tmpl")
        let addressFamily = family ?? .ipv6
        return XfrmTemplateRecord(
            destination: try address(raw, at: 0, family: addressFamily, "id.daddr"),
            spi: try raw.bigEndianUInt32(16, "id.spi"),
            protocolNumber: try raw.uint8(20, "id.proto"),
            family: family,
            source: try address(raw, at: 28, family: addressFamily, "saddr"),
            reqid: Reqid(try raw.uint32(44, "reqid")),
            mode: try raw.uint8(48, "mode"),
            share: try raw.uint8(49, "share"),
            optional: try raw.uint8(50, "optional"),
            authenticationAlgorithms: try raw.uint32(52, "aalgos"),
            encryptionAlgorithms: try raw.uint32(56, "ealgos"),
            compressionAlgorithms: try raw.uint32(60, "calgos"))
    }
}

extension XfrmCodec {
    /// Decodes an `xfrm_userpolicy_id` (the payload of `XFRM_MSG_DELPOLICY`). Throws when its
    /// selector or direction does not fit the model.
    static func decodePolicyIdentifier(_ payload: NetlinkReader) throws -> PolicyIdentifier {
        let raw = try payload.slice(0, userpolicyIDSize, context: "xfrm_userpolicy_id")
        let directionNumber = try raw.uint8(60, "dir")
        guard let direction = direction(number: directionNumber) else {
            throw NetlinkDecodingError("xfrm_userpolicy_id", "direction \(directionNumber) is a per-socket policy")
        }
        return PolicyIdentifier(selector: try selector(raw, at: 0), direction: direction)
    }
}
