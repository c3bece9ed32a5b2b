import Foundation
import Reconciler
import Synchronization

/// The tests' one clock: it moves only when told to (`advance(by:)`), so tests move time instead
/// of sleeping.
///
/// A sleep either jumps straight to its deadline (`.jump`, the default: the code under test runs
/// on at once, as if the time had passed), or waits until `advance(by:)` moves the clock past
/// its deadline (`.wait`: a loop parks between cycles until the test moves it on; a sleep that
/// nobody advances past waits until its task is cancelled). Either way the clock keeps what a
/// test looks at: how many sleeps started and wait now, the earliest deadline waited for, and
/// how far ahead each sleep aimed.
public final class ManualClock: ReconcilerClock {
    /// What a sleep whose deadline has not come does.
    public enum Sleeps: Sendable {
        /// Moves the clock to the deadline and returns.
        case jump
        /// Waits until `advance(by:)` moves the clock to the deadline, or the task is cancelled.
        case wait
    }

    private struct Sleeper {
        let id: UUID
        let deadline: Date
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Date
        var sleepers: [Sleeper] = []
        var lengths: [TimeInterval] = []
        var started = 0
        var nextSleep: (@Sendable () async throws -> Void)?
    }

    private let state: Mutex<State>
    private let sleeps: Sleeps
    private let onChange: @Sendable () -> Void
    private let onSleep: @Sendable (_ started: Int, _ now: Date) -> Void

    /// - Parameters:
    ///   - start: the clock's first time.
    ///   - sleeps: what a sleep whose deadline has not come does.
    ///   - onChange: called each time a sleep starts waiting or a waiting one is cancelled (for
    ///     tests that wait for the code under test to park).
    ///   - onSleep: called at the start of every sleep with how many have started and the time
    ///     (for tests that look at the code under test between its turns).
    public init(
        _ start: Date = Date(timeIntervalSince1970: 1_800_000_000), sleeps: Sleeps = .jump,
        onChange: @escaping @Sendable () -> Void = {},
        onSleep: @escaping @Sendable (_ started: Int, _ now: Date) -> Void = { _, _ in }
    ) {
        state = Mutex(State(now: start))
        self.sleeps = sleeps
        self.onChange = onChange
        self.onSleep = onSleep
    }

    public func now() -> Date { state.withLock { $0.now } }

    /// Moves the clock on by `interval` and wakes every waiting sleep whose deadline it reached.
    public func advance(by interval: TimeInterval) {
        let woken = state.withLock { state in
            state.now = state.now.addingTimeInterval(interval)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in woken { sleeper.continuation.resume() }
    }

    /// How many sleeps have started, due or not.
    public var sleepsStarted: Int { state.withLock { $0.started } }

    /// How many sleeps wait right now (`.wait` only).
    public var sleeping: Int { state.withLock { $0.sleepers.count } }

    /// The earliest deadline a waiting sleep waits for, if any waits.
    public var nextDeadline: Date? { state.withLock { $0.sleepers.map(\.deadline).min() } }

    /// How far ahead of the clock each sleep aimed whose deadline had not come, in the order they
    /// started.
    public var sleepLengths: [TimeInterval] { state.withLock { $0.lengths } }

    /// Runs `body` at the start of the next sleep, once, before that sleep jumps or waits: the
    /// test acts while the code under test waits.
    public func onNextSleep(_ body: @escaping @Sendable () async throws -> Void) {
        state.withLock { $0.nextSleep = body }
    }

    public func sleep(until deadline: Date) async throws {
        let (hook, started, now) = state.withLock { state in
            state.started += 1
            if deadline > state.now { state.lengths.append(deadline.timeIntervalSince(state.now)) }
            defer { state.nextSleep = nil }
            return (state.nextSleep, state.started, state.now)
        }
        onSleep(started, now)
        try await hook?()
        switch sleeps {
        case .jump:
            state.withLock { $0.now = max($0.now, deadline) }
        case .wait:
            try await wait(until: deadline)
        }
    }

    private func wait(until deadline: Date) async throws {
        let id = UUID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Cancellation is checked under the lock that `onCancel` takes: a sleep cancelled
                // before it is registered ends at once instead of waiting for a clock nobody moves.
                enum Start { case due, cancelled, waiting }
                let start = state.withLock { state -> Start in
                    if Task.isCancelled { return .cancelled }
                    if deadline <= state.now { return .due }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return .waiting
                }
                switch start {
                case .due: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .waiting: onChange()
                }
            }
        } onCancel: {
            // Only this sleep ends: another with the same deadline (two keepers' turns) waits on.
            let cancelled = state.withLock { state in
                let waiting = state.sleepers.filter { $0.id == id }
                state.sleepers.removeAll { $0.id == id }
                return waiting
            }
            for sleeper in cancelled { sleeper.continuation.resume(throwing: CancellationError()) }
            if !cancelled.isEmpty { onChange() }
        }
    }
}
