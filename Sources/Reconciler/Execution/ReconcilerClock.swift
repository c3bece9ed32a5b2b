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
