import MeshwardCore

/// A policy as the kernel reports it in a `XFRM_MSG_NEWPOLICY` dump message: the fields
/// Meshward reads, whether or not the policy is one Meshward could have written.
struct XfrmPolicyRecord: Hashable {
    /// The selector; nil when it cannot be expressed as a `PolicySelector` (then it cannot be
    /// one of Meshward's either), with the reason in `selectorProblem`.
    var selector: PolicySelector?
    var selectorProblem: String?
    /// `dir`: 0 in, 1 out, 2 fwd; larger values are per-socket policies.
    var directionNumber: UInt8
    var priority: UInt32
    var index: UInt32
    var action: UInt8
    var policyType: UInt8
    var templates: [XfrmTemplateRecord]
    /// True when the policy carries a non-zero mark or interface id: Meshward never writes one.
    var isMarked: Bool

    /// The identifier, when the selector and direction fit the model.
    var identifier: PolicyIdentifier? {
        guard let selector, let direction = XfrmCodec.direction(number: directionNumber) else { return nil }
        return PolicyIdentifier(selector: selector, direction: direction)
    }

    /// True when one of the templates carries `reqid`.
    func mentions(_ reqid: Reqid) -> Bool { templates.contains { $0.reqid == reqid } }

    /// The policy as the model describes it; the reason when it is not one Meshward could have
    /// written: a main-type, unmarked `allow` policy with exactly one ESP transport template.
    func securityPolicy() -> Result<SecurityPolicy, XfrmEncodingError> {
        guard let selector else { return .failure(XfrmEncodingError(selectorProblem ?? "unreadable selector")) }
        guard let direction = XfrmCodec.direction(number: directionNumber) else {
            return .failure(XfrmEncodingError("direction \(directionNumber) is a per-socket policy"))
        }
        guard action == XfrmCodec.actionAllow else {
            return .failure(XfrmEncodingError("action \(action) is not allow"))
        }
        guard policyType == XfrmCodec.policyTypeMain else {
            return .failure(XfrmEncodingError("policy type \(policyType) is not main"))
        }
        guard !isMarked else { return .failure(XfrmEncodingError("the policy carries a mark or interface id")) }
        guard templates.count == 1, let template = templates.first else {
            return .failure(XfrmEncodingError("\(templates.count) templates, not one"))
        }
        guard template.protocolNumber == XfrmCodec.protocolESP, template.mode == XfrmCodec.modeTransport else {
            return .failure(
                XfrmEncodingError(
                    "template protocol \(template.protocolNumber) mode \(template.mode) is not ESP transport"))
        }
        guard template.family == selector.family, template.source.family == selector.family else {
            return .failure(XfrmEncodingError("template family differs from the selector's"))
        }
        return .success(
            SecurityPolicy(
                selector: selector, direction: direction, priority: priority,
                template: PolicyTemplate(
                    source: template.source, destination: template.destination,
                    spi: template.spi == 0 ? nil : SPI(template.spi), reqid: template.reqid,
                    isOptional: template.optional != 0)))
    }
}

/// One `struct xfrm_user_tmpl` of a policy.
struct XfrmTemplateRecord: Hashable {
    var destination: IPAddress
    var spi: UInt32
    var protocolNumber: UInt8
    /// nil when the kernel reports a family other than AF_INET and AF_INET6 (the addresses are
    /// then read as 16 bytes).
    var family: AddressFamily?
    var source: IPAddress
    var reqid: Reqid
    var mode: UInt8
    var share: UInt8
    var optional: UInt8
    var authenticationAlgorithms: UInt32
    var encryptionAlgorithms: UInt32
    var compressionAlgorithms: UInt32
}
