import Kernel
import MeshwardCore

/// The watch stream's messages (wire version 2): positions, snapshot items, changes and
/// progress. SAs travel as a watch reports them (`SecurityAssociation.watched`): the key as its
/// fingerprint, never its bytes, and counters zero.
extension WireCodec {
    public static func encode(_ position: WatchPosition) -> Meshward_Agent_V1_WatchPosition {
        var message = Meshward_Agent_V1_WatchPosition()
        message.epoch = position.epoch
        message.seq = position.seq
        return message
    }

    public static func decode(_ message: Meshward_Agent_V1_WatchPosition) -> WatchPosition {
        WatchPosition(epoch: message.epoch, seq: message.seq)
    }

    /// The request for a watch of the objects owned under `reqid`, from `position` (nil for a
    /// snapshot), from a sender whose newest version is `newest`.
    public static func watchRequest(
        reqid: Reqid, from position: WatchPosition?, newest: UInt32 = protocolVersion
    ) -> Meshward_Agent_V1_WatchRequest {
        var request = Meshward_Agent_V1_WatchRequest()
        request.protocolVersion = watchProtocolVersion
        request.newestProtocolVersion = newest
        request.reqid = reqid.rawValue
        if let position { request.position = encode(position) }
        return request
    }

    /// The event that carries `message`. A snapshot holds upserts only: a deletion in one (which
    /// no watch model sends) goes out as an empty object, which the receiver refuses.
    public static func event(_ message: WatchMessage) -> Meshward_Agent_V1_WatchEvent {
        var event = Meshward_Agent_V1_WatchEvent()
        switch message {
        case .snapshot(let change):
            var object = Meshward_Agent_V1_WatchObject()
            switch change {
            case .securityAssociation(let sa): object.securityAssociation = encode(sa.watched, keyBytes: false)
            case .policy(let policy): object.policy = encode(policy)
            case .securityAssociationDeleted, .policyDeleted: break
            }
            event.snapshot = object
        case .snapshotEnd(let position, let bootID):
            var end = Meshward_Agent_V1_SnapshotEnd()
            end.epoch = position.epoch
            end.seq = position.seq
            end.bootID = bootID ?? ""
            event.snapshotEnd = end
        case .change(let seq, let change):
            var message = Meshward_Agent_V1_WatchChange()
            message.seq = seq
            switch change {
            case .securityAssociation(let sa): message.upsertSecurityAssociation = encode(sa.watched, keyBytes: false)
            case .policy(let policy): message.upsertPolicy = encode(policy)
            case .securityAssociationDeleted(let id): message.deleteSecurityAssociation = encode(id)
            case .policyDeleted(let id): message.deletePolicy = encode(id)
            }
            event.change = message
        case .progress(let progress):
            var message = Meshward_Agent_V1_WatchProgress()
            message.epoch = progress.position.epoch
            message.seq = progress.position.seq
            message.bootID = progress.bootID ?? ""
            message.digest = progress.digest
            if let statistics = progress.statistics {
                var counters = Meshward_Agent_V1_WatchStatistics()
                counters.counters = statistics
                message.statistics = counters
            }
            event.progress = message
        }
        return event
    }

    /// The watch message an event carries.
    public static func message(from event: Meshward_Agent_V1_WatchEvent) throws(WireError) -> WatchMessage {
        switch event.event {
        case .snapshot(let object):
            switch object.object {
            case .securityAssociation(let sa): return .snapshot(.securityAssociation(try decode(sa)))
            case .policy(let policy): return .snapshot(.policy(try decode(policy)))
            case nil: throw WireError.malformed("a snapshot item without an SA or a policy")
            }
        case .snapshotEnd(let end):
            return .snapshotEnd(
                WatchPosition(epoch: end.epoch, seq: end.seq), bootID: end.bootID.isEmpty ? nil : end.bootID)
        case .change(let message):
            let change: KernelChange
            switch message.change {
            case .upsertSecurityAssociation(let sa): change = .securityAssociation(try decode(sa))
            case .upsertPolicy(let policy): change = .policy(try decode(policy))
            case .deleteSecurityAssociation(let id): change = .securityAssociationDeleted(try decode(id))
            case .deletePolicy(let id): change = .policyDeleted(try decode(id))
            case nil: throw WireError.malformed("a watch change of seq \(message.seq) without an object")
            }
            return .change(seq: message.seq, change)
        case .progress(let message):
            return .progress(
                WatchProgress(
                    position: WatchPosition(epoch: message.epoch, seq: message.seq),
                    bootID: message.bootID.isEmpty ? nil : message.bootID, digest: message.digest,
                    statistics: message.hasStatistics ? message.statistics.counters : nil))
        case nil:
            throw WireError.malformed("a watch event of no known kind")
        }
    }

    static func encode(_ id: PolicyIdentifier) -> Meshward_Agent_V1_PolicyIdentifier {
        var identifier = Meshward_Agent_V1_PolicyIdentifier()
        identifier.selector = encode(id.selector)
        identifier.direction = id.direction.rawValue
        return identifier
    }

    static func decode(_ message: Meshward_Agent_V1_PolicyIdentifier) throws(WireError) -> PolicyIdentifier {
        PolicyIdentifier(selector: try decode(message.selector), direction: try direction(message.direction))
    }
}
