import MeshwardCore

/// A set of owned objects as a watch knows them, keyed by identity, with their digest kept
/// current one change at a time. Both ends keep one: the watched kernel's model and the
/// receiver's cache of that node.
public struct WatchedObjects: Sendable, Hashable {
    public private(set) var securityAssociations: [SAIdentifier: SecurityAssociation] = [:]
    public private(set) var policies: [PolicyIdentifier: SecurityPolicy] = [:]
    /// `WatchDigest` of every object held.
    public private(set) var digest: UInt64 = 0

    public init() {}

    /// The objects of one reading (SAs reduced to what a watch reports: `SecurityAssociation.watched`).
    public init(securityAssociations: [SecurityAssociation], policies: [SecurityPolicy]) {
        for sa in securityAssociations { apply(.securityAssociation(sa)) }
        for policy in policies { apply(.policy(policy)) }
    }

    /// How many objects are held.
    public var count: Int { securityAssociations.count + policies.count }

    /// Every object, as upserts, in a stable order (SAs by identifier, then policies).
    public var upserts: [KernelChange] {
        securityAssociations.sorted { $0.key < $1.key }.map { .securityAssociation($0.value) }
            + policies.sorted { $0.key < $1.key }.map { .policy($0.value) }
    }

    /// Applies `change` and says whether it changed anything: an upsert of an object held
    /// exactly as it is, or a deletion of one not held, changes nothing.
    @discardableResult
    public mutating func apply(_ change: KernelChange) -> Bool {
        switch change {
        case .securityAssociation(let reported):
            let sa = reported.watched
            let old = securityAssociations[sa.identifier]
            if let old, Self.same(old, sa) { return false }
            if let old { digest ^= WatchDigest.hash(of: .securityAssociation(old)) }
            securityAssociations[sa.identifier] = sa
            digest ^= WatchDigest.hash(of: .securityAssociation(sa))
        case .policy(let policy):
            let old = policies[policy.identifier]
            if old == policy { return false }
            if let old { digest ^= WatchDigest.hash(of: .policy(old)) }
            policies[policy.identifier] = policy
            digest ^= WatchDigest.hash(of: .policy(policy))
        case .securityAssociationDeleted(let id):
            guard let old = securityAssociations.removeValue(forKey: id) else { return false }
            digest ^= WatchDigest.hash(of: .securityAssociation(old))
        case .policyDeleted(let id):
            guard let old = policies.removeValue(forKey: id) else { return false }
            digest ^= WatchDigest.hash(of: .policy(old))
        }
        return true
    }

    /// The changes that turn `self` into `target`, deletions first, each object in a stable
    /// order: what a watch emits after a resynchronising dump.
    public func changes(to target: WatchedObjects) -> [KernelChange] {
        var changes: [KernelChange] = []
        for id in securityAssociations.keys.sorted() where target.securityAssociations[id] == nil {
            changes.append(.securityAssociationDeleted(id))
        }
        for id in policies.keys.sorted() where target.policies[id] == nil {
            changes.append(.policyDeleted(id))
        }
        for (id, sa) in target.securityAssociations.sorted(by: { $0.key < $1.key }) {
            if let old = securityAssociations[id], Self.same(old, sa) { continue }
            changes.append(.securityAssociation(sa))
        }
        for (id, policy) in target.policies.sorted(by: { $0.key < $1.key }) where policies[id] != policy {
            changes.append(.policy(policy))
        }
        return changes
    }

    /// Equality of two SAs as a watch reports them: `SecurityAssociation`'s own equality (which
    /// ignores counters) plus the key's fingerprint, which it compares only when one side has
    /// no bytes.
    static func same(_ left: SecurityAssociation, _ right: SecurityAssociation) -> Bool {
        left == right && left.key.fingerprint == right.key.fingerprint
    }
}
