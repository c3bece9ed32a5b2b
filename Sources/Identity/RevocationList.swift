import Foundation
import MeshwardCore

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

    /// Each revoked serial, in `CertificateSerial`'s form (`0c:ff:01`): a serial set here in
    /// the older form without each byte's leading zero (`c:ff:1`) is kept in the two-digit one.
    public var entries: [String: Entry] {
        get { bySerial }
        set { bySerial = Self.normalised(newValue) }
    }
    private var bySerial: [String: Entry]

    public init(entries: [String: Entry] = [:]) {
        self.bySerial = Self.normalised(entries)
    }

    private static func normalised(_ entries: [String: Entry]) -> [String: Entry] {
        Dictionary(
            entries.map { (CertificateSerial.normalised($0.key), $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    /// No serial revoked.
    public static let empty = RevocationList()

    /// The revocation of `serial`, or nil when it is not revoked. Serials compare in
    /// `CertificateSerial`'s form, so `0c:ff:01` and `c:ff:1` name the same certificate.
    public func revocation(of serial: String) -> Entry? { bySerial[CertificateSerial.normalised(serial)] }
}
