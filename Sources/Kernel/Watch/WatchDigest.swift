import MeshwardCore

/// The digest of a set of owned objects that a watch's progress carries and its receiver
/// computes over its own copy: the XOR of one 64-bit FNV-1a hash per object over a canonical
/// text of what a watch reports of it (an SA's key by fingerprint, no counters). XOR makes it
/// independent of order and lets both ends keep it current one change at a time.
public enum WatchDigest {
    /// The hash of one object as it stands (an upsert's object).
    public static func hash(of change: KernelChange) -> UInt64 {
        switch change {
        case .securityAssociation(let sa):
            fnv1a(
                "sa \(sa.source) \(sa.destination) \(sa.spi.hex) \(sa.reqid) \(sa.cipher) \(sa.key.fingerprint) "
                    + "\(sa.replayWindow) \(sa.extendedSequenceNumbers)")
        case .policy(let policy):
            fnv1a("policy \(policy)")
        case .securityAssociationDeleted, .policyDeleted:
            0
        }
    }

    /// The digest of `objects` (upserts), computed whole.
    public static func of<Objects: Sequence>(_ objects: Objects) -> UInt64 where Objects.Element == KernelChange {
        objects.reduce(0) { $0 ^ hash(of: $1) }
    }

    private static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}

extension SecurityAssociation {
    /// This SA as a watch reports it: the key by fingerprint, counters zero.
    public var watched: SecurityAssociation {
        var copy = self
        copy.key = .fingerprint(key.fingerprint)
        copy.counters = .zero
        return copy
    }
}
