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
        }
    }
}
