import Reconciler
/// How an `apply`, `rekey` or `reconcile` cycle ended, as `ApplyDocument.outcome` says it.
///
/// Encoded as its raw value (`"converged"`, `"waiting-for-drain"`, `"blocked"`): pipelines read
/// these exact strings (docs/cli.md), so a raw value never changes.
public enum ApplyOutcome: String, Codable, Sendable, Hashable, CaseIterable {
    /// Every channel is where the spec wants it; nothing is held back.
    case converged
    /// Only drains remain (`apply --no-wait`): `ApplyDocument.waitingUntil` says when a run can finish.
    case waitingForDrain = "waiting-for-drain"
    /// Some channels need a node that did not answer; everything else converged.
    case blocked
}
