import Foundation
import Reconciler
import Store

/// Where this controller stands with the Store's lease, as its `LeaseKeeper` last learned it.
///
/// A reconcile loop runs cycles only in `leading`; in every other role it waits for the keeper
/// to lead (controller-runtime's reconcilers run only while elected).
public enum LeaseRole: Sendable, Hashable {
    /// It holds no lease and has seen none held elsewhere: it has not tried yet, or it gave its
    /// lease back.
    case idle
    /// Another controller, `holder`, holds the lease, due to lapse at `expires` (the Store's
    /// clock) unless renewed; this one stands by.
    case standby(holder: String, expires: Date)
    /// This controller holds `lease`, as last taken or renewed.
    case leading(Lease)
    /// This controller held the lease and found it gone: taken over by `to`, or by nobody (nil:
    /// released or removed). It writes nothing until it takes the lease again.
    case lost(to: String?)

    /// Whether this controller holds the lease.
    public var isLeading: Bool {
        if case .leading = self { true } else { false }
    }

    /// The lease this controller holds; nil in every other role.
    public var lease: Lease? {
        if case .leading(let lease) = self { lease } else { nil }
    }
}
