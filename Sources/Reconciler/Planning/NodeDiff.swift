import Kernel
import MeshwardCore

/// The minimal operations that turn what a node holds into what it must hold: add what is
/// missing, replace (UPDPOLICY) a policy that differs, delete what is stale.
///
/// Pure and unstaged: it says what differs, not when it may change. An SA that differs (another
/// key, cipher or address under the same SPI) cannot be changed in place, so it is deleted; the
/// generation planner has already put a new generation in its place.
public enum NodeDiff {
    /// One entry per object that differs, in a stable order: SAs to add, policies to add or
    /// replace, policies to delete, SAs to delete.
    public static func operations(
        observed: NodeObservation, desiredSAs: [SecurityAssociation],
        desiredPolicies: [SecurityPolicy]
    ) -> [KernelOperation] {
        var observedSAs: [SAIdentifier: SecurityAssociation] = [:]
        for sa in observed.securityAssociations { observedSAs[sa.identifier] = sa }
        var observedPolicies: [PolicyIdentifier: SecurityPolicy] = [:]
        for policy in observed.policies { observedPolicies[policy.identifier] = policy }

        var addSAs: [KernelOperation] = []
        var deleteSAs: [KernelOperation] = []
        var wantedSAs = Set<SAIdentifier>()
        for sa in desiredSAs.sorted(by: { $0.identifier < $1.identifier }) {
            wantedSAs.insert(sa.identifier)
            if let existing = observedSAs[sa.identifier] {
                if !existing.hasSameConfiguration(as: sa) { deleteSAs.append(.deleteSA(sa.identifier)) }
            } else {
                addSAs.append(.addSA(sa))
            }
        }
        for id in observedSAs.keys.sorted() where !wantedSAs.contains(id) {
            deleteSAs.append(.deleteSA(id))
        }

        var writePolicies: [KernelOperation] = []
        var wantedPolicies = Set<PolicyIdentifier>()
        for policy in desiredPolicies.sorted(by: { $0.identifier < $1.identifier }) {
            wantedPolicies.insert(policy.identifier)
            if let existing = observedPolicies[policy.identifier] {
                if !existing.hasSameConfiguration(as: policy) { writePolicies.append(.updatePolicy(policy)) }
            } else {
                writePolicies.append(.addPolicy(policy))
            }
        }
        let deletePolicies = observedPolicies.keys.sorted().filter { !wantedPolicies.contains($0) }
            .map { KernelOperation.deletePolicy($0) }
        return addSAs + writePolicies + deletePolicies + deleteSAs
    }
}

extension SecurityAssociation {
    /// True when the two describe the same SA as far as traffic is concerned: addresses, SPI,
    /// reqid, cipher and key. Counters and replay settings are not compared.
    public func hasSameConfiguration(as other: SecurityAssociation) -> Bool {
        source == other.source && destination == other.destination && spi == other.spi && reqid == other.reqid
            && cipher == other.cipher && key == other.key
    }
}

extension SecurityPolicy {
    /// True when the two policies would treat every packet alike: same selector, direction,
    /// priority, and template SPI, reqid and level.
    public func hasSameConfiguration(as other: SecurityPolicy) -> Bool {
        identifier == other.identifier && priority == other.priority && template.spi == other.template.spi
            && template.reqid == other.template.reqid && template.isOptional == other.template.isOptional
    }
}
