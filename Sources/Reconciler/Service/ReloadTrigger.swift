import Synchronization

/// Set from outside the loop (the SIGHUP handler) to make the reconcile loop start its next
/// cycle now, reloading the spec.
public final class ReloadTrigger: Sendable {
    private let pending = Mutex(false)

    public init() {}

    /// Asks for a reload.
    public func fire() { pending.withLock { $0 = true } }

    /// True once per `fire()`.
    func consume() -> Bool {
        pending.withLock { state in
            defer { state = false }; return state
        }
    }
}
