import Kernel
import MeshwardCore

/// Why a run of passes stopped short.
public enum ReconcileError: Error, Sendable, CustomStringConvertible {
    /// Kernels kept refusing operations for several passes in a row.
    case operationsFailed([String])
    /// The fleet did not converge within the pass bound: a defect, never expected.
    case didNotConverge(passes: Int, remaining: [String])
    /// A reconcile cycle ended blocked by unreachable nodes or with refused operations.
    case incomplete(outcome: String, failures: Int)
    /// Nothing is left to do, yet operations the fleet needs are held back: a defect, never
    /// reported as converged.
    case stalled(held: [String], count: Int)
    /// The lease could not be confirmed before sending kernel operations: nothing was sent.
    case leaseLost(String)
    /// The journal refused the record of operations about to be sent (nothing was sent) or of
    /// their outcome.
    case journalRefused(String)

    public var description: String {
        switch self {
        case .operationsFailed(let failures):
            "kernel operations failed in several passes in a row:\n"
                + failures.prefix(20).map { "  \($0)" }.joined(separator: "\n")
                + (failures.count > 20 ? "\n  ... and \(failures.count - 20) more" : "")
        case .didNotConverge(let passes, let remaining):
            "the fleet did not converge within \(passes) passes; still to do:\n"
                + remaining.prefix(20).map { "  \($0)" }.joined(separator: "\n")
        case .incomplete(let outcome, let failures):
            "the cycle did not converge: \(outcome), \(failures) operations refused"
        case .stalled(let held, let count):
            "the fleet cannot converge: \(count) kernel operations are held back with nothing else to do:\n"
                + held.prefix(20).map { "  \($0)" }.joined(separator: "\n")
                + (count > held.count ? "\n  ... and \(count - held.count) more" : "")
        case .leaseLost(let reason):
            "stopped before changing any kernel: \(reason)"
        case .journalRefused(let reason):
            "the journal could not be written, so the run stopped: \(reason)"
        }
    }
}
