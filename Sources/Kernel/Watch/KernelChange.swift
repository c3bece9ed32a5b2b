import MeshwardCore

/// One change to a node's owned objects, as a kernel watch reports it (design.md §12).
///
/// A change never carries key bytes: an SA's key is its fingerprint (`SAKey.fingerprint`), as
/// in an observation over an agent, and its counters are zero (counters come only from fresh
/// reads).
public enum KernelChange: Sendable, Hashable, CustomStringConvertible {
    /// An owned SA appeared or changed.
    case securityAssociation(SecurityAssociation)
    /// An owned policy appeared or changed.
    case policy(SecurityPolicy)
    /// An owned SA went away.
    case securityAssociationDeleted(SAIdentifier)
    /// An owned policy went away.
    case policyDeleted(PolicyIdentifier)

    /// Which object the change is about.
    public var object: WatchedObjectID {
        switch self {
        case .securityAssociation(let sa): .securityAssociation(sa.identifier)
        case .policy(let policy): .policy(policy.identifier)
        case .securityAssociationDeleted(let id): .securityAssociation(id)
        case .policyDeleted(let id): .policy(id)
        }
    }

    /// Whether the change removes its object.
    public var isDeletion: Bool {
        switch self {
        case .securityAssociationDeleted, .policyDeleted: true
        case .securityAssociation, .policy: false
        }
    }

    public var description: String {
        switch self {
        case .securityAssociation(let sa): "upsert \(sa)"
        case .policy(let policy): "upsert \(policy)"
        case .securityAssociationDeleted(let id): "delete \(id)"
        case .policyDeleted(let id): "delete \(id)"
        }
    }
}

/// The identity of one object a watch follows: an SA by destination and SPI, a policy by
/// selector and direction.
public enum WatchedObjectID: Sendable, Hashable, CustomStringConvertible {
    case securityAssociation(SAIdentifier)
    case policy(PolicyIdentifier)

    public var description: String {
        switch self {
        case .securityAssociation(let id): "\(id)"
        case .policy(let id): "policy \(id)"
        }
    }
}

/// Where a watch stands: the model's `epoch` (random, new each time the model starts) and the
/// `seq` of its last change (+1 for each change of an owned object; 0 before the first).
public struct WatchPosition: Sendable, Hashable, Codable, CustomStringConvertible {
    public var epoch: UInt64
    public var seq: UInt64

    public init(epoch: UInt64, seq: UInt64) {
        self.epoch = epoch
        self.seq = seq
    }

    public var description: String { "epoch \(String(epoch, radix: 16)) seq \(seq)" }
}

/// What a watch says every progress interval, changed or not: where it stands, the host's boot
/// ID, and a digest of its model that the receiver compares with its own copy.
public struct WatchProgress: Sendable, Hashable {
    public var position: WatchPosition
    public var bootID: String?
    /// `WatchDigest` of every owned object at `position`.
    public var digest: UInt64
    /// The namespace's XFRM statistics (`XfrmInNoStates` …), only when they changed since the
    /// last progress on this stream.
    public var statistics: [String: UInt64]?

    public init(position: WatchPosition, bootID: String?, digest: UInt64, statistics: [String: UInt64]? = nil) {
        self.position = position
        self.bootID = bootID
        self.digest = digest
        self.statistics = statistics
    }
}

/// One message of a watch stream (`NodeKernel.watch(from:)`), in the order a stream sends them:
/// either a replay of the changes after the position asked for, or a snapshot (every owned
/// object, then `snapshotEnd`); then changes as they happen, with progress in between.
public enum WatchMessage: Sendable, Hashable {
    /// One owned object of a snapshot (an upsert).
    case snapshot(KernelChange)
    /// The snapshot is complete: the model stood at `position` when it was taken.
    case snapshotEnd(WatchPosition, bootID: String?)
    /// A change, numbered: replayed from the ring or live.
    case change(seq: UInt64, KernelChange)
    /// The periodic progress.
    case progress(WatchProgress)
}

/// Why a watch stream ended before its receiver ended it.
public enum KernelWatchError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The receiver did not keep up: its stream's queue (`capacity` messages) filled. Every
    /// message up to `position` was queued; resume from there.
    case overflow(node: String, capacity: Int, position: WatchPosition)
    /// The watch's source stopped (the kernel's socket closed, the agent shut down).
    case stopped(node: String, reason: String)
    /// The node's kernel cannot be watched (an agent of an older protocol): it is polled.
    case unsupported(node: String, reason: String)

    public var description: String {
        switch self {
        case .overflow(let node, let capacity, let position):
            "node \(node): the watch stream's queue of \(capacity) messages filled; resume from \(position)"
        case .stopped(let node, let reason): "node \(node): the watch stopped: \(reason)"
        case .unsupported(let node, let reason): "node \(node) cannot be watched (\(reason)); it is polled"
        }
    }
}

/// The result of a batch on a watched kernel: one result per operation and the watch's position
/// once the batch's changes are in its model (nil for a kernel that is not watched).
public struct AppliedBatch: Sendable, Hashable {
    public var results: [OperationResult]
    public var position: WatchPosition?

    public init(results: [OperationResult], position: WatchPosition?) {
        self.results = results
        self.position = position
    }
}
