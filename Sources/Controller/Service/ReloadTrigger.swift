import Foundation
import Reconciler
import Synchronization

/// Wakes the reconcile loop for its next cycle before its interval has passed: fired from
/// outside the loop (the SIGHUP handler, the spec watcher, a graceful shutdown). The loop waits
/// on it and on its clock at once, so nothing polls.
public final class ReloadTrigger: Sendable {
    private struct State {
        /// Reasons fired while nobody waited, each once, in the order fired; the next wait
        /// returns them at once.
        var pending: [String] = []
        var waiter: CheckedContinuation<[String], Never>?
    }

    private let state = Mutex(State())

    public init() {}

    /// Wakes the loop (or the next wait) with `reason`, for its log. Reasons fired while the
    /// loop is busy are all kept (each once) for its next wait: a SIGHUP is not hidden by a
    /// spec change noticed just before it.
    public func fire(_ reason: String = "reload requested") {
        let waiter = state.withLock { state -> CheckedContinuation<[String], Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            if !state.pending.contains(reason) { state.pending.append(reason) }
            return nil
        }
        waiter?.resume(returning: [reason])
    }

    /// Returns the reasons once the trigger fires, or none once `deadline` has passed on
    /// `clock` (or the waiting task is cancelled). Reasons fired before the wait return at once;
    /// one fired as the deadline passes is returned, not lost.
    func wait(until deadline: Date, on clock: any ReconcilerClock) async -> [String] {
        let pending = state.withLock { state -> [String] in
            defer { state.pending = [] }
            return state.pending
        }
        if !pending.isEmpty { return pending }
        return await withTaskGroup(of: [String].self) { group in
            group.addTask {
                try? await clock.sleep(until: deadline)
                return []
            }
            group.addTask { await self.nextFire() }
            var reasons = await group.next() ?? []
            group.cancelAll()
            // A waiter left behind by the cancelled task is woken so that the group can end.
            if let waiter = state.withLock({ state -> CheckedContinuation<[String], Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }) {
                waiter.resume(returning: [])
            }
            // A reason fired while the deadline passed reached the other task: keep it.
            for await late in group { reasons += late.filter { !reasons.contains($0) } }
            return reasons
        }
    }

    private func nextFire() async -> [String] {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate = state.withLock { state -> [String]? in
                    if !state.pending.isEmpty {
                        defer { state.pending = [] }
                        return state.pending
                    }
                    if Task.isCancelled { return [] }
                    state.waiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<[String], Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: [])
        }
    }
}
