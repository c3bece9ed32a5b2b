import Foundation
import Reconciler

/// How one cycle of the reconcile loop ended, in the few words a metric label or a readiness
/// check needs.
public enum CycleOutcome: String, Sendable, Hashable, CaseIterable {
    /// Every kernel matches the spec.
    case converged
    /// Only drain waits remain; the next cycle finishes them.
    case waitingForDrain = "waiting_for_drain"
    /// Nodes did not answer; what does not need them is done.
    case blocked
    /// Another controller holds the Store's lease; this one is a standby, ran no cycle and
    /// changed nothing. The loop reports it directly, once each time it starts waiting to lead.
    case standby
    /// The cycle failed (an invalid spec with no last good one, a refused operation, a guard).
    case failed

    /// The outcome of a cycle that ran and returned `result`: any error is a failure (a standby
    /// runs no cycle, so none of its outcomes comes from here).
    public init(_ result: Result<ApplyDocument, any Error>) {
        switch result {
        case .success(let document) where !document.failures.isEmpty:
            self = .failed
        case .success(let document):
            switch document.outcome {
            case .waitingForDrain: self = .waitingForDrain
            case .blocked: self = .blocked
            case .converged: self = .converged
            }
        case .failure:
            self = .failed
        }
    }

    /// Whether a controller whose last cycle ended so is ready: it leads and its last pass
    /// succeeded (converged, draining, or blocked only by unreachable nodes), or it is a standby.
    public var isReady: Bool {
        switch self {
        case .converged, .waitingForDrain, .blocked, .standby: true
        case .failed: false
        }
    }
}
