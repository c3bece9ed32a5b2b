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
