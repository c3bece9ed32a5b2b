import Foundation
import Synchronization

/// Runs one call against a deadline of its own, without trusting the call to keep it: the
/// caller gets the call's answer, or `DeadlinePassed` once the deadline has passed, whichever
/// comes first. A call that ignores its deadline and cancellation keeps running on its own
/// (cancelled), but never holds up the caller. A call that may change something is not
/// cancelled at its deadline (`cancellingLateCall` false): it ends by its transport's own
/// bound, so that what it sends leaves whole, as it would without the race.
///
/// The deadline is `timeout` from when the call starts running, not from when it was asked
/// for: time spent waiting for a thread on a loaded machine is not charged to the node.
///
/// Two clocks, one deadline: the race is decided on the injected clock (its timer watches it,
/// and a call that throws is late when that clock has reached the deadline), as every timer
/// of the controller is, so that tests move time instead of waiting it out. The call is given
/// the same deadline on `ContinuousClock` (now plus `timeout`) as its transport's own bound
/// (the gRPC call's timeout, the netlink socket's receive timeout), since a transport measures
/// real time. With the system clock the two agree; with a test's clock the transport's bound
/// is only a backstop for a call the test never moves the clock past.
enum DeadlineRace {
    /// The call had not answered when its deadline passed; `underlying` is what it threw at or
    /// after its deadline, nil when it had not answered at all.
    struct DeadlinePassed: Error {
        var underlying: (any Error)?
    }

    /// Runs `body` with its transport's deadline, `timeout` from now on `ContinuousClock`, and
    /// races it against the same deadline on `clock`. With `cancellingLateCall` false, the call
    /// is cancelled only when the caller is, never because its deadline passed.
    static func run<T: Sendable>(
        clock: any ReconcilerClock, timeout: Duration, cancellingLateCall: Bool = true,
        _ body: @escaping @Sendable (ContinuousClock.Instant) async throws -> T
    ) async throws -> T {
        let race = Race<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                race.start(continuation)
                let work = Task {
                    let deadline = clock.now().addingTimeInterval(timeout.timeInterval)
                    let bound = ContinuousClock.now + timeout
                    let timer = Task {
                        // A cancelled watch means the call answered first.
                        guard (try? await clock.watch(until: deadline)) != nil else { return }
                        race.finish(.failure(DeadlinePassed(underlying: nil)), sparingCall: !cancellingLateCall)
                    }
                    race.hold(timer)
                    do {
                        race.finish(.success(try await body(bound)))
                    } catch {
                        let late = clock.now() >= deadline
                        race.finish(.failure(late ? DeadlinePassed(underlying: error) : error))
                    }
                }
                race.hold(work, isCall: true)
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }

    /// The continuation and the two tasks of one race: the first `finish` resumes the caller
    /// and cancels both tasks (the timer alone when it spares the call); every later one is
    /// ignored.
    private final class Race<T: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<T, any Error>?
            var result: Result<T, any Error>?
            var sparesCall = false
            var tasks: [(task: Task<Void, Never>, isCall: Bool)] = []
        }

        private let state = Mutex(State())

        func start(_ continuation: CheckedContinuation<T, any Error>) {
            let early = state.withLock { state -> Result<T, any Error>? in
                if let result = state.result { return result }
                state.continuation = continuation
                return nil
            }
            if let early { continuation.resume(with: early) }
        }

        /// Keeps `task` (the call's when `isCall`) to cancel when the race ends (at once when it
        /// has ended).
        func hold(_ task: Task<Void, Never>, isCall: Bool = false) {
            let cancel = state.withLock { state -> Bool in
                if state.result != nil { return !(isCall && state.sparesCall) }
                state.tasks.append((task, isCall))
                return false
            }
            if cancel { task.cancel() }
        }

        /// Ends the race with `result`, cancelling its tasks; with `sparingCall`, the call's
        /// task runs on.
        func finish(_ result: Result<T, any Error>, sparingCall: Bool = false) {
            let (continuation, tasks) = state.withLock {
                state -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
                guard state.result == nil else { return (nil, []) }
                state.result = result
                state.sparesCall = sparingCall
                defer {
                    state.continuation = nil
                    state.tasks = []
                }
                return (state.continuation, state.tasks.filter { !(sparingCall && $0.isCall) }.map(\.task))
            }
            for task in tasks { task.cancel() }
            continuation?.resume(with: result)
        }
    }
}
