/// A failure to reach or read a node's kernel. Per-operation refusals are not errors: they are
/// `OperationOutcome.failed` results.
public enum KernelError: Error, Sendable, CustomStringConvertible {
    /// The node cannot be reached at all (namespace missing, socket refused, simulated outage).
    case unreachable(node: String, reason: String)
    /// A dump failed or returned something that could not be decoded.
    case observationFailed(node: String, reason: String)
    /// A netlink exchange went wrong outside any one operation (socket error, malformed reply).
    case transport(node: String, operation: String, errno: Int32?, message: String)
    /// The node's agent answers with a provisional certificate (it holds a join token) and is
    /// not enrolled yet; the reason says what stopped its enrollment, if anything did.
    case waitingForEnrollment(node: String, reason: String)

    public var description: String {
        switch self {
        case .unreachable(let node, let reason):
            "node \(node) is unreachable: \(reason)"
        case .observationFailed(let node, let reason):
            "could not read the security databases of node \(node): \(reason)"
        case .transport(let node, let operation, let errno, let message):
            "node \(node): \(operation) failed"
                + (errno.map { ": \(ErrnoName.name($0))" } ?? "") + ": \(message)"
        case .waitingForEnrollment(let node, let reason):
            "node \(node) is waiting for enrollment: \(reason)"
        }
    }
}
