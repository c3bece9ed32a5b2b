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
///
/// A watched deadline (`watch(until:)`, the timer of a call's deadline) never moves the clock,
/// in either mode: it waits until `advance(by:)`, or a jumping sleep, moves the clock to it, or
/// its task is cancelled (the call answered). Watches are counted apart from sleeps
/// (`watching`, `watchesStarted`), so that a call in flight is never taken for a parked loop.
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
        var watchers: [Sleeper] = []
        var watchesStarted = 0
        var lengths: [TimeInterval] = []
        var started = 0
        var nextSleep: (@Sendable () async throws -> Void)?

        /// The sleeps or the watches that wait.
        subscript(waiting kind: Waiting) -> [Sleeper] {
            get { kind == .sleep ? sleepers : watchers }
            set {
                switch kind {
                case .sleep: sleepers = newValue
                case .watch: watchers = newValue
                }
            }
        }
    }

    /// What waits: a sleep or a watch.
    private enum Waiting { case sleep, watch }

    private let state: Mutex<State>
    private let sleeps: Sleeps
    private let onChange: @Sendable () -> Void
    private let onSleep: @Sendable (_ started: Int, _ now: Date) -> Void

    /// - Parameters:
    ///   - start: the clock's first time.
    ///   - sleeps: what a sleep whose deadline has not come does.
    ///   - onChange: called each time a watch starts, a sleep or a watch starts waiting, or a
    ///     waiting one is cancelled (for tests that wait for the code under test to park, or for
    ///     its calls in flight).
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

    /// Moves the clock on by `interval` and wakes every waiting sleep and watch whose deadline
    /// it reached.
    public func advance(by interval: TimeInterval) {
        let woken = state.withLock { state in
            state.now = state.now.addingTimeInterval(interval)
            return Self.due(&state)
        }
        for sleeper in woken { sleeper.continuation.resume() }
    }

    /// Takes the sleeps and watches whose deadline the clock has reached out of `state`.
    private static func due(_ state: inout State) -> [Sleeper] {
        let now = state.now
        let due = (state.sleepers + state.watchers).filter { $0.deadline <= now }
        state.sleepers.removeAll { $0.deadline <= now }
        state.watchers.removeAll { $0.deadline <= now }
        return due
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

    /// How many watches have started, due or not, cancelled or not.
    public var watchesStarted: Int { state.withLock { $0.watchesStarted } }

    /// How many watches wait right now: calls in flight whose deadline the clock has not reached.
    public var watching: Int { state.withLock { $0.watchers.count } }

    /// The earliest deadline a waiting watch waits for, if any waits.
    public var nextWatchDeadline: Date? { state.withLock { $0.watchers.map(\.deadline).min() } }

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
            let woken = state.withLock { state in
                state.now = max(state.now, deadline)
                return Self.due(&state)
            }
            for watcher in woken { watcher.continuation.resume() }
        case .wait:
            try await wait(until: deadline, as: .sleep)
        }
    }

    public func watch(until deadline: Date) async throws {
        try await wait(until: deadline, as: .watch)
    }

    /// Waits in `list` (the sleeps' or the watches') until the clock reaches `deadline`.
    private func wait(until deadline: Date, as kind: Waiting) async throws {
        let id = UUID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Cancellation is checked under the lock that `onCancel` takes: a sleep cancelled
                // before it is registered ends at once instead of waiting for a clock nobody moves.
                // A watch is counted under the same lock, so that a started watch is either waiting
                // or over, never between the two.
                enum Start { case due, cancelled, waiting }
                let start = state.withLock { state -> Start in
                    if kind == .watch { state.watchesStarted += 1 }
                    if Task.isCancelled { return .cancelled }
                    if deadline <= state.now { return .due }
                    state[waiting: kind].append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return .waiting
                }
                switch start {
                case .due: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .waiting: break
                }
                if start == .waiting || kind == .watch { onChange() }
            }
        } onCancel: {
            // Only this sleep ends: another with the same deadline (two keepers' turns) waits on.
            let cancelled = state.withLock { state in
                let waiting = state[waiting: kind].filter { $0.id == id }
                state[waiting: kind].removeAll { $0.id == id }
                return waiting
            }
            for sleeper in cancelled { sleeper.continuation.resume(throwing: CancellationError()) }
            if !cancelled.isEmpty { onChange() }
        }
    }
}
