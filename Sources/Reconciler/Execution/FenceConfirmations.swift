import Foundation
import Synchronization

/// The fence confirmed right before each node's batch: a batch that starts while a confirmation
/// is in flight waits for that one instead of starting another, so the batches that a pass
/// starts together cost one renewal, and a batch that starts later (after a slow node's) gets a
/// fresh one.
final class FenceConfirmations: Sendable {
    private let fence: any WriteFence
    private let clock: any ReconcilerClock
    private let inFlight = Mutex<Task<Date, any Error>?>(nil)

    init(fence: any WriteFence, clock: any ReconcilerClock) {
        self.fence = fence
        self.clock = clock
    }

    /// Confirms the fence (joining a confirmation in flight) and answers until when it holds;
    /// throws what the fence threw when it could not be confirmed.
    func confirm() async throws -> Date {
        let task = inFlight.withLock { current in
            if let current { return current }
            let started = Task { [fence, clock] in try await fence.confirm(at: clock.now()) }
            current = started
            return started
        }
        defer {
            inFlight.withLock { current in
                if current == task { current = nil }
            }
        }
        return try await task.value
    }
}
