import Foundation
import Synchronization

/// The end of a child process, for a task to await without holding a thread while it runs.
///
/// `Process.waitUntilExit()` blocks its thread until the child ends; called from a task, that is
/// one of the cooperative pool's threads (two on a two-core machine), which runs nothing else
/// meanwhile. This is woken by the process's `terminationHandler` instead, set before the launch
/// so that a process that ends at once is not missed. For tests and benchmarks only.
public final class ProcessExit: Sendable {
    private enum Waiter {
        case untilExit(CheckedContinuation<Int32, Never>)
        case untilDeadline(CheckedContinuation<Int32?, Never>)

        func resume(_ status: Int32?) {
            switch self {
            case .untilExit(let continuation):
                if let status { continuation.resume(returning: status) }
            case .untilDeadline(let continuation):
                continuation.resume(returning: status)
            }
        }
    }

    private enum State {
        case running(waiters: [Int: Waiter], next: Int)
        case exited(Int32)
    }

    private let state = Mutex(State.running(waiters: [:], next: 0))

    /// Starts `process`, watching for its end; `process.terminationHandler` is this one's from now on.
    public init(launching process: Process) throws {
        process.terminationHandler = { [self] ended in finish(ended.terminationStatus) }
        try process.run()
    }

    /// Waits until the process has ended and returns its status: its exit code, or the number of
    /// the signal that ended it.
    public func status() async -> Int32 {
        await withCheckedContinuation { continuation in
            _ = register(.untilExit(continuation))
        }
    }

    /// `status()`, or nil when the process still runs after `seconds` (a bound on a test that
    /// would otherwise hang, never a figure a test asserts on).
    public func status(within seconds: Double) async -> Int32? {
        var timer: Task<Void, Never>?
        let status = await withCheckedContinuation { continuation in
            guard let waiter = register(.untilDeadline(continuation)) else { return }
            timer = Task { [self] in
                try? await Task.sleep(for: .seconds(seconds))
                giveUp(waiter)
            }
        }
        timer?.cancel()
        return status
    }

    /// Keeps `waiter` until the end and returns its number, or resumes it now and returns nil
    /// when the process has already ended.
    private func register(_ waiter: Waiter) -> Int? {
        let registered: (number: Int?, ended: Int32?) = state.withLock { state in
            switch state {
            case .running(var waiters, let next):
                waiters[next] = waiter
                state = .running(waiters: waiters, next: next + 1)
                return (next, nil)
            case .exited(let status):
                return (nil, status)
            }
        }
        if let ended = registered.ended { waiter.resume(ended) }
        return registered.number
    }

    private func giveUp(_ number: Int) {
        let waiter: Waiter? = state.withLock { state in
            guard case .running(var waiters, let next) = state, let waiter = waiters.removeValue(forKey: number)
            else { return nil }
            state = .running(waiters: waiters, next: next)
            return waiter
        }
        waiter?.resume(nil)
    }

    private func finish(_ status: Int32) {
        let waiters: [Waiter] = state.withLock { state in
            guard case .running(let waiters, _) = state else { return [] }
            state = .exited(status)
            return Array(waiters.values)
        }
        for waiter in waiters { waiter.resume(status) }
    }
}
