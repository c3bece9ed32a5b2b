import Foundation

/// The certificate serials the cluster has revoked, as the controller loaded them from the
/// Store for one connection: the verifier refuses a certificate whose serial is here even
/// while it is otherwise valid.
public struct RevocationList: Sendable, Hashable {
    /// One revoked serial: whose certificate it was, when it was revoked and why.
    public struct Entry: Sendable, Hashable {
        public var node: String
        public var revokedAt: Date
        public var reason: String

        public init(node: String, revokedAt: Date, reason: String) {
            self.node = node
            self.revokedAt = revokedAt
            self.reason = reason
        }
    }

    /// Each revoked serial, as `Certificate.SerialNumber` prints it.
    public var entries: [String: Entry]

    public init(entries: [String: Entry] = [:]) {
        self.entries = entries
    }

    /// No serial revoked.
    public static let empty = RevocationList()

    /// The revocation of `serial`, or nil when it is not revoked.
    public func revocation(of serial: String) -> Entry? { entries[serial] }
}
