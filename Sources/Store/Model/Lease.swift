import Foundation

/// The right to write the store, held by one controller at a time until it expires.
public struct Lease: Sendable, Hashable {
    /// Who holds it, as the holder named itself (for example `host:pid`).
    public var holder: String
    /// When the holder first acquired it (renewals keep this).
    public var acquiredAt: Date
    /// When it lapses unless renewed; after this any other holder may take it over.
    public var expiresAt: Date

    public init(holder: String, acquiredAt: Date, expiresAt: Date) {
        self.holder = holder
        self.acquiredAt = acquiredAt
        self.expiresAt = expiresAt
    }

    /// True while `now` is before `expiresAt`.
    public func isLive(at now: Date) -> Bool { now < expiresAt }
}
