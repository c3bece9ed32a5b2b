import Foundation
import Synchronization

/// The time as the reconciler sees it. Injected, so tests advance time instead of sleeping.
public protocol ReconcilerClock: Sendable {
    func now() -> Date
    /// Returns at `deadline` (or at once when it has passed); throws when cancelled.
    func sleep(until deadline: Date) async throws
    /// Returns once the clock has reached `deadline` by its own course (at once when it has);
    /// throws when cancelled. Where `sleep(until:)` is the code waiting for time to pass, this is
    /// a deadline watched while a call runs (`DeadlineRace`): a clock that moves only when its
    /// code sleeps (a rehearsal's, a test's jumping clock) is never moved by it, so that the
    /// call's answer can come first.
    func watch(until deadline: Date) async throws
}

/// The wall clock.
public struct SystemClock: ReconcilerClock {
    public init() {}

    public func now() -> Date { Date() }

    public func sleep(until deadline: Date) async throws {
        let interval = deadline.timeIntervalSinceNow
        if interval > 0 { try await Task.sleep(for: .milliseconds(Int64((interval * 1000).rounded(.up)))) }
    }

    public func watch(until deadline: Date) async throws { try await sleep(until: deadline) }
}
