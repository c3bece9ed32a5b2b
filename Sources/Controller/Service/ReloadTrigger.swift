import Foundation
import Reconciler
import Synchronization

/// Wakes the reconcile loop for its next cycle before its interval has passed: fired from
/// outside the loop (the SIGHUP handler, the spec watcher, a graceful shutdown). The loop waits
/// on it and on its clock at once, so nothing polls.
public final class ReloadTrigger: Sendable {
    private struct State {
        /// A reason fired while nobody waited; the next wait returns it at once.
        var pending: String?
        var waiter: CheckedContinuation<String?, Never>?
    }

    private let state = Mutex(State())

    public init() {}

    /// Wakes the loop (or the next wait) with `reason`, for its log.
    public func fire(_ reason: String = "reload requested") {
        let waiter = state.withLock { state -> CheckedContinuation<String?, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = state.pending ?? reason
            return nil
        }
        waiter?.resume(returning: reason)
    }

    /// Returns the reason once the trigger fires, or nil once `deadline` has passed on `clock`
    /// (or the waiting task is cancelled). A reason fired before the wait returns at once.
    func wait(until deadline: Date, on clock: any ReconcilerClock) async -> String? {
        if let pending = state.withLock({ state -> String? in
            defer { state.pending = nil }
            return state.pending
        }) {
            return pending
        }
        return await withTaskGroup(of: String?.self) { group in
            group.addTask {
                try? await clock.sleep(until: deadline)
                return nil
            }
            group.addTask { await self.nextFire() }
            let first = await group.next() ?? nil
            group.cancelAll()
            // A waiter left behind by the cancelled task is woken so that the group can end.
            if let waiter = state.withLock({ state -> CheckedContinuation<String?, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }) {
                waiter.resume(returning: nil)
            }
            return first
        }
    }

    private func nextFire() async -> String? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate = state.withLock { state -> String?? in
                    if let pending = state.pending {
                        state.pending = nil
                        return .some(pending)
                    }
                    if Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<String?, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}
