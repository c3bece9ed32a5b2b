import Foundation
import Reconciler
import Synchronization

/// The clock of a rehearsal (`plan`): it starts at the real time and moves only when the
/// passes sleep, jumping straight to each deadline, so that drains cost no waiting. A call's
/// deadline never moves it: the rehearsal's kernels are in memory and answer at once, and a
/// deadline is watched in real time, as long from the rehearsal's now as it lies ahead.
final class RehearsalClock: ReconcilerClock {
    private let current: Mutex<Date>

    init(startingAt start: Date) {
        current = Mutex(start)
    }

    func now() -> Date { current.withLock { $0 } }

    func sleep(until deadline: Date) async throws {
        current.withLock { $0 = max($0, deadline) }
    }

    func watch(until deadline: Date) async throws {
        let interval = deadline.timeIntervalSince(now())
        if interval > 0 { try await Task.sleep(for: .milliseconds(Int64((interval * 1000).rounded(.up)))) }
    }
}
