import Synchronization

/// Runs one call against a deadline of its own, without trusting the call to keep it: the
/// caller gets the call's answer, or `DeadlinePassed` once the deadline has passed, whichever
/// comes first. A call that ignores its deadline and cancellation keeps running on its own
/// (cancelled), but never holds up the caller.
enum DeadlineRace {
    /// The call had not answered when its deadline passed.
    struct DeadlinePassed: Error {}

    static func run<T: Sendable>(
        until deadline: ContinuousClock.Instant, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let race = Race<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                race.start(continuation)
                let work = Task {
                    do {
                        race.finish(.success(try await body()))
                    } catch {
                        race.finish(.failure(error))
                    }
                }
                let timer = Task {
                    // A cancelled sleep means the call answered first.
                    guard (try? await Task.sleep(until: deadline, clock: .continuous)) != nil else { return }
                    race.finish(.failure(DeadlinePassed()))
                }
                race.hold(work: work, timer: timer)
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }

    /// The continuation and the two tasks of one race: the first `finish` resumes the caller
    /// and cancels both tasks; every later one is ignored.
    private final class Race<T: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<T, any Error>?
            var result: Result<T, any Error>?
            var tasks: [Task<Void, Never>] = []
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

        func hold(work: Task<Void, Never>, timer: Task<Void, Never>) {
            let finished = state.withLock { state -> Bool in
                if state.result != nil { return true }
                state.tasks = [work, timer]
                return false
            }
            if finished {
                work.cancel()
                timer.cancel()
            }
        }

        func finish(_ result: Result<T, any Error>) {
            let (continuation, tasks) = state.withLock {
                state -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
                guard state.result == nil else { return (nil, []) }
                state.result = result
                defer {
                    state.continuation = nil
                    state.tasks = []
                }
                return (state.continuation, state.tasks)
            }
            for task in tasks { task.cancel() }
            continuation?.resume(with: result)
        }
    }
}
