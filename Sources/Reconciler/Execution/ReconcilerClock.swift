import Foundation
import Synchronization

/// The time as the reconciler sees it. Injected, so tests advance time instead of sleeping.
public protocol ReconcilerClock: Sendable {
    func now() -> Date
    /// Returns at `deadline` (or at once when it has passed); throws when cancelled.
    func sleep(until deadline: Date) async throws
}

/// The wall clock.
public struct SystemClock: ReconcilerClock {
    public init() {}

    public func now() -> Date { Date() }

    public func sleep(until deadline: Date) async throws {
        let interval = deadline.timeIntervalSinceNow
        if interval > 0 { try await Task.sleep(for: .milliseconds(Int64((interval * 1000).rounded(.up)))) }
    }
}

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
