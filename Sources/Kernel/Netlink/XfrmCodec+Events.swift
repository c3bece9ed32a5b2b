import MeshwardCore

extension XfrmCodec {
    // Message types only the multicast groups send (`XFRM_MSG_*`).
    static let expire: UInt16 = 24
    static let policyExpire: UInt16 = 27
    static let flushSA: UInt16 = 28
    static let flushPolicy: UInt16 = 29

    // Attributes that carry the whole object in a deletion event (`XFRMA_SA`, `XFRMA_POLICY`).
    static let attributeSA: UInt16 = 6
    static let attributePolicy: UInt16 = 7

    // Multicast groups (`enum xfrm_nlgroups`), and their bits for `nl_groups` (1 << (group - 1)).
    static let groupExpire: UInt32 = 2  // XFRMNLGRP_EXPIRE: EXPIRE, POLEXPIRE
    static let groupSA: UInt32 = 3  // XFRMNLGRP_SA: NEWSA, UPDSA, DELSA, FLUSHSA
    static let groupPolicy: UInt32 = 4  // XFRMNLGRP_POLICY: NEWPOLICY, UPDPOLICY, DELPOLICY, FLUSHPOLICY
    static let watchedGroups: UInt32 = [groupExpire, groupSA, groupPolicy].reduce(0) { $0 | 1 << ($1 - 1) }

    /// `sizeof(struct xfrm_user_expire)`: `xfrm_usersa_info`, `hard`, padding to 8.
    static let userExpireSize = 232
    /// `sizeof(struct xfrm_user_polexpire)`: `xfrm_userpolicy_info`, `hard`, padding to 8.
    static let userPolicyExpireSize = 176

    /// What one multicast message means for the objects of `reqid` (net/xfrm/xfrm_user.c):
    ///
    /// - NEWSA, UPDSA: `xfrm_usersa_info` and attributes, the SA as it now stands.
    /// - DELSA: `xfrm_usersa_id`, then `XFRMA_SA` (the SA's `xfrm_usersa_info`) and its
    ///   other attributes.
    /// - NEWPOLICY, UPDPOLICY: `xfrm_userpolicy_info` and attributes.
    /// - DELPOLICY: `xfrm_userpolicy_id` (by selector, or by index with a zero selector), then
    ///   `XFRMA_POLICY` (the policy's `xfrm_userpolicy_info`) and its templates.
    /// - EXPIRE: `xfrm_user_expire` (the SA and `hard`), then its mark; a hard expiry deleted it.
    /// - POLEXPIRE: `xfrm_user_polexpire` (the policy and `hard`), then its templates.
    /// - FLUSHSA (`xfrm_usersa_flush`, the protocol only), FLUSHPOLICY (nothing): every object
    ///   of the kind went, with no event per object.
    ///
    /// An object is owned as `observe` decides it: an ESP transport SA with `reqid` and a
    /// Meshward cipher, a policy whose single ESP template carries `reqid`. An upsert of an
    /// object that is not owned (an UPDPOLICY that gave our selector to another reqid) is the
    /// deletion of whatever owned object had its identity, unless marks or a sub policy type
    /// make it another kernel object.
    static func event(_ message: NetlinkMessage, reqid: Reqid) throws -> XfrmEvent {
        switch message.header.type {
        case newSA, updateSA:
            return saUpsert(try decodeSA(message.payload), reqid: reqid)
        case deleteSA:
            let record = try decodeSA(try embedded(message.payload, header: usersaIDSize, attribute: attributeSA))
            return ownedSADeletion(record, reqid: reqid)
        case expire:
            let hard = try message.payload.uint8(usersaInfoSize, "xfrm_user_expire.hard") != 0
            guard hard else { return .nothing }
            let record = try decodeSA(try joined(message.payload, structure: usersaInfoSize, header: userExpireSize))
            return ownedSADeletion(record, reqid: reqid)
        case newPolicy, updatePolicy:
            return policyUpsert(try decodePolicy(message.payload), reqid: reqid)
        case deletePolicy:
            let record = try decodePolicy(
                try embedded(message.payload, header: userpolicyIDSize, attribute: attributePolicy))
            return ownedPolicyDeletion(record, reqid: reqid)
        case policyExpire:
            let hard = try message.payload.uint8(userpolicyInfoSize, "xfrm_user_polexpire.hard") != 0
            guard hard else { return .nothing }
            let record = try decodePolicy(
                try joined(message.payload, structure: userpolicyInfoSize, header: userPolicyExpireSize))
            return ownedPolicyDeletion(record, reqid: reqid)
        case flushSA:
            return .resynchronize(reason: "the SAs were flushed (XFRM_MSG_FLUSHSA)")
        case flushPolicy:
            return .resynchronize(reason: "the policies were flushed (XFRM_MSG_FLUSHPOLICY)")
        default:
            return .resynchronize(reason: "an event of type \(message.header.type), which the watch does not decode")
        }
    }

    private static func saUpsert(_ record: XfrmSARecord, reqid: Reqid) -> XfrmEvent {
        guard record.isESP else { return .nothing }
        if record.reqid == reqid, case .success(let sa) = record.securityAssociation() {
            return .changes([.securityAssociation(sa.watched)])
        }
        return record.isMarked ? .nothing : .changes([.securityAssociationDeleted(record.identifier)])
    }

    private static func ownedSADeletion(_ record: XfrmSARecord, reqid: Reqid) -> XfrmEvent {
        guard record.isESP, record.reqid == reqid, !record.isMarked else { return .nothing }
        return .changes([.securityAssociationDeleted(record.identifier)])
    }

    private static func policyUpsert(_ record: XfrmPolicyRecord, reqid: Reqid) -> XfrmEvent {
        guard direction(number: record.directionNumber) != nil else { return .nothing }
        if case .success(let policy) = record.securityPolicy(), policy.template.reqid == reqid {
            return .changes([.policy(policy)])
        }
        guard !record.isMarked, record.policyType == policyTypeMain, let identifier = record.identifier else {
            return .nothing
        }
        return .changes([.policyDeleted(identifier)])
    }

    private static func ownedPolicyDeletion(_ record: XfrmPolicyRecord, reqid: Reqid) -> XfrmEvent {
        guard case .success(let policy) = record.securityPolicy(), policy.template.reqid == reqid else {
            return .nothing
        }
        return .changes([.policyDeleted(policy.identifier)])
    }

    /// A deletion event's object as a dump message would carry it: the structure from the
    /// `attribute` that follows the `header` identifier, then the message's other attributes.
    private static func embedded(_ payload: NetlinkReader, header: Int, attribute: UInt16) throws -> NetlinkReader {
        let attributesRegion = try payload.tail(from: header, context: "event attributes")
        let attributes = try NetlinkAttributes(attributesRegion)
        guard let structure = attributes[attribute] else {
            throw NetlinkDecodingError(payload.context, "the deletion event has no attribute \(attribute)")
        }
        return NetlinkReader(
            try structure.byteArray(0, structure.count, "embedded structure")
                + attributesRegion.byteArray(0, attributesRegion.count, "event attributes"),
            context: payload.context)
    }

    /// An expiry event's object as a dump message would carry it: the leading `structure`
    /// bytes, then the attributes after the `header` (which adds `hard` and padding).
    private static func joined(_ payload: NetlinkReader, structure: Int, header: Int) throws -> NetlinkReader {
        let attributes = try payload.tail(from: header, context: "event attributes")
        return NetlinkReader(
            try payload.byteArray(0, structure, "expired object")
                + attributes.byteArray(0, attributes.count, "event attributes"),
            context: payload.context)
    }
}
