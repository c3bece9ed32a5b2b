import Foundation
import Reconciler
import Synchronization

/// A clock that moves only when told to; `sleep(until:)` jumps straight to the deadline.
public final class ManualClock: ReconcilerClock {
    private let current: Mutex<Date>

    public init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        current = Mutex(start)
    }

    public func now() -> Date { current.withLock { $0 } }

    public func advance(by interval: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(interval) }
    }

    public func sleep(until deadline: Date) async throws {
        current.withLock { $0 = max($0, deadline) }
    }
}
