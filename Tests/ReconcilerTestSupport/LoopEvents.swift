import Foundation
import Synchronization

/// What the code under test did, for a test to wait on: each change wakes the waiters whose
/// condition now holds.
final class LoopEvents: Sendable {
    private let waiters = Mutex<
        [(id: UUID, condition: @Sendable () -> Bool, continuation: CheckedContinuation<Void, Never>)]
    >([])

    /// Returns once `condition` holds; checked now and after every change. Returns as well
    /// when the waiting task is cancelled (a test's time limit), so that a loop that went
    /// another way fails its test instead of holding the whole run.
    func wait(until condition: @escaping @Sendable () -> Bool) async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let holds = waiters.withLock { waiters -> Bool in
                    if Task.isCancelled || condition() { return true }
                    waiters.append((id, condition, continuation))
                    return false
                }
                if holds { continuation.resume() }
            }
        } onCancel: {
            let cancelled = waiters.withLock { waiters -> [CheckedContinuation<Void, Never>] in
                let mine = waiters.filter { $0.id == id }.map(\.continuation)
                waiters.removeAll { $0.id == id }
                return mine
            }
            for continuation in cancelled { continuation.resume() }
        }
    }

    /// Something happened: wakes every waiter whose condition holds now (each condition is
    /// read once, so a waiter is either woken or kept).
    func changed() {
        let woken = waiters.withLock { waiters -> [CheckedContinuation<Void, Never>] in
            var ready: [CheckedContinuation<Void, Never>] = []
            var waiting: [(id: UUID, condition: @Sendable () -> Bool, continuation: CheckedContinuation<Void, Never>)] =
                []
            for waiter in waiters {
                if waiter.condition() { ready.append(waiter.continuation) } else { waiting.append(waiter) }
            }
            waiters = waiting
            return ready
        }
        for continuation in woken { continuation.resume() }
    }
}
