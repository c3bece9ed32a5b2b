import Kernel
import MeshwardCore
import Reconciler

/// The reference diff the planner's minimality is checked against: the minimal operations that turn what a node holds into what it must hold: add what is
/// missing, replace (UPDPOLICY) a policy that differs, delete what is stale.
///
/// Pure and unstaged: it says what differs, not when it may change. An SA that differs (another
/// key, cipher or address under the same SPI) cannot be changed in place, so it is deleted; the
/// generation planner has already put a new generation in its place.
enum NodeDiff {
    /// One entry per object that differs, in a stable order: SAs to add, policies to add or
    /// replace, policies to delete, SAs to delete.
    static func operations(
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
