import Reconciler
/// Whether a plan made earlier still describes what `apply` would do now.
public enum PlanComparison {
    /// Why `saved` no longer matches `now`, one reason per thing that moved on; empty when it
    /// still matches. Compared: the revision, the target, the Store's and the fleet's
    /// fingerprints, and the changes per channel with their counts. Not compared: when drains
    /// end (they move with the clock, not with the fleet).
    public static func differences(saved: PlanDocument, now: PlanDocument) -> [String] {
        var reasons: [String] = []
        if saved.revision != now.revision {
            reasons.append("the spec's revision is \(now.revision.prefix(12)), the plan's \(saved.revision.prefix(12))")
        }
        if saved.target != now.target {
            reasons.append("the plan's target is \(saved.target ?? "the whole fleet"), now \(now.target ?? "none")")
        }
        if saved.stateFingerprint != now.stateFingerprint {
            reasons.append("the Store changed since the plan was made (an apply, rekey or reconcile ran)")
        }
        if saved.fleetFingerprint != now.fleetFingerprint {
            reasons.append(
                "the kernels changed since the plan was made (an SA or policy was added or removed, or a node "
                    + "stopped or started answering)")
        }
        if saved.channelChanges != now.channelChanges || saved.summary != now.summary {
            let savedChannels = Set(saved.channelChanges.map { "\($0.action) \($0.channel)" })
            let nowChannels = Set(now.channelChanges.map { "\($0.action) \($0.channel)" })
            let added = nowChannels.subtracting(savedChannels).sorted()
            let gone = savedChannels.subtracting(nowChannels).sorted()
            var detail = "the changes differ"
            if !added.isEmpty { detail += "; now also: " + added.prefix(5).joined(separator: ", ") }
            if !gone.isEmpty { detail += "; no longer: " + gone.prefix(5).joined(separator: ", ") }
            if added.isEmpty && gone.isEmpty { detail += " (a reason, a difference or an operation count)" }
            reasons.append(detail)
        }
        return reasons
    }
}
