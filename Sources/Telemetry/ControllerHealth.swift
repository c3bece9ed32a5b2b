import Controller
import Reconciler
import Synchronization

/// What `/readyz` answers for a controller: ready once a cycle ended with the controller
/// leading and its last pass succeeding (converged, draining, or blocked only by unreachable
/// nodes), or as a standby while another controller holds the lease. Not ready before the first
/// cycle ends, and after a cycle that failed.
public final class ControllerHealth: ReconcileRecorder {
    private let last = Mutex<CycleOutcome?>(nil)

    public init() {}

    /// The outcome of the last cycle; nil before the first one ended.
    public var lastCycle: CycleOutcome? { last.withLock { $0 } }

    /// Whether the controller is ready, and why, in a line for the response body.
    public var readiness: (ready: Bool, reason: String) {
        guard let outcome = lastCycle else { return (false, "no cycle has ended yet") }
        switch outcome {
        case .standby: return (outcome.isReady, "standby: another controller holds the lease")
        case .failed: return (outcome.isReady, "the last cycle failed")
        default: return (outcome.isReady, "leading; the last cycle ended \(outcome.rawValue)")
        }
    }

    public func record(pass: PassMeasurement) {}

    public func record(cycle: CycleOutcome) { last.withLock { $0 = cycle } }

    public func record(lease: LeaseState) {}
}
