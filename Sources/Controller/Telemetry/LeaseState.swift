import Reconciler
/// Where the Store's lease stands for this controller.
public enum LeaseState: Sendable, Hashable {
    /// This controller holds the lease at `epoch`.
    case leading(epoch: Int64)
    /// Another controller holds it; this one waits (a standby).
    case standby(holder: String)
}
