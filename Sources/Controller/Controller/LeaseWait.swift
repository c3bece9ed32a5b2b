import Foundation
import Reconciler

/// Another controller's lease that a command waits for (`apply --lock-timeout`): who holds it,
/// under which epoch, until when, and how long the command waits at most.
public struct LeaseWait: Sendable, Hashable {
    /// The holder as it named itself (`HOST pid N`).
    public var holder: String
    /// The holder's epoch; nil when the lease changed hands between the two reads.
    public var epoch: Int64?
    /// When the holder's lease lapses unless it renews it.
    public var expiresAt: Date
    /// How long the command waits for the lease at most.
    public var timeout: Duration

    public init(holder: String, epoch: Int64?, expiresAt: Date, timeout: Duration) {
        self.holder = holder
        self.epoch = epoch
        self.expiresAt = expiresAt
        self.timeout = timeout
    }

    /// `'HOST pid N' (epoch 3, expires 2026-12-01T16:00:00Z)`.
    public var heldBy: String {
        let epoch = self.epoch.map { "epoch \($0), " } ?? ""
        return "'\(holder)' (\(epoch)expires \(expiresAt.formatted(.iso8601)))"
    }
}
