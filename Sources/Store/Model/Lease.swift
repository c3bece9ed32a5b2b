import Foundation

/// The right to write the store, held by one controller at a time until it expires.
public struct Lease: Sendable, Hashable {
    /// Who holds it, as the holder named itself (for example `host:pid`).
    public var holder: String
    /// When the holder first acquired it (renewals keep this).
    public var acquiredAt: Date
    /// When it lapses unless renewed; after this any other holder may take it over.
    public var expiresAt: Date
    /// One more every time the lease changes hands (renewals keep it); never lower. A write or a
    /// kernel operation made under a lower epoch than the current one comes from a deposed holder.
    public var epoch: Int64

    public init(holder: String, acquiredAt: Date, expiresAt: Date, epoch: Int64 = 0) {
        self.holder = holder
        self.acquiredAt = acquiredAt
        self.expiresAt = expiresAt
        self.epoch = epoch
    }

    /// True while `now` is before `expiresAt`.
    public func isLive(at now: Date) -> Bool { now < expiresAt }
}
