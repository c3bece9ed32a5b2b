import Foundation
import Reconciler
import Synchronization

/// The clock of a rehearsal (`plan`): it starts at the real time and moves only when the
/// passes sleep, jumping straight to each deadline, so that drains cost no waiting.
final class RehearsalClock: ReconcilerClock {
    private let current: Mutex<Date>

    init(startingAt start: Date) {
        current = Mutex(start)
    }

    func now() -> Date { current.withLock { $0 } }

    func sleep(until deadline: Date) async throws {
        current.withLock { $0 = max($0, deadline) }
    }
}
