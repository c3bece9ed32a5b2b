import MeshwardCore

/// What a `NetlinkKernel` may touch: the SAs and policies that the last observation reported
/// as Meshward's (or that Meshward has since added), and the policies it saw as foreign.
///
/// A delete of anything not in the ledger is refused, and so is an update that would replace
/// a foreign policy: Meshward never touches a foreign object.
struct OwnershipLedger {
    var ownedSAs: Set<SAIdentifier> = []
    var ownedPolicies: Set<PolicyIdentifier> = []
    /// Policies held by someone else, by the identifier the kernel matches on.
    var foreignPolicies: Set<PolicyIdentifier> = []
    /// False until the first observation: `apply` observes first, so that its refusals rest on
    /// what the kernel really holds.
    var hasObserved = false

    /// Replaces the ledger with what an observation showed.
    mutating func record(
        ownedSAs: Set<SAIdentifier>, ownedPolicies: Set<PolicyIdentifier>,
        foreignPolicies: Set<PolicyIdentifier>
    ) {
        self.ownedSAs = ownedSAs
        self.ownedPolicies = ownedPolicies
        self.foreignPolicies = foreignPolicies
        hasObserved = true
    }

    /// Accounts for an operation that took effect (`certain`) or may have (its acknowledgement
    /// was lost). An unacknowledged add or update is not counted as owned: it may have failed
    /// EEXIST on a foreign object, which a later delete would then remove. The next
    /// observation tells.
    mutating func recordEffect(of operation: KernelOperation, certain: Bool) {
        switch operation {
        case .addSA(let sa): if certain { ownedSAs.insert(sa.identifier) }
        case .addPolicy(let policy), .updatePolicy(let policy): if certain { ownedPolicies.insert(policy.identifier) }
        case .deleteSA(let identifier): if certain { ownedSAs.remove(identifier) }
        case .deletePolicy(let identifier): if certain { ownedPolicies.remove(identifier) }
        }
    }
}
