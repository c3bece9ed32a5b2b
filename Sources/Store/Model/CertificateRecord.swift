import Foundation

/// A node certificate the cluster CA issued, as the Store keeps it: enough to revoke every
/// certificate of a node without holding the certificates themselves.
public struct IssuedCertificate: Sendable, Hashable {
    /// The certificate's serial number, as `CertificateSerial` prints it: two hex digits per byte,
    /// separated by colons (`0c:ff:01`).
    public var serial: String
    /// The node the certificate speaks for.
    public var node: String
    /// When it was issued.
    public var issuedAt: Date
    /// When it stops being valid.
    public var notValidAfter: Date

    public init(serial: String, node: String, issuedAt: Date, notValidAfter: Date) {
        self.serial = serial
        self.node = node
        self.issuedAt = issuedAt
        self.notValidAfter = notValidAfter
    }
}

/// A revoked certificate serial: whose it was, when it was revoked and why.
public struct RevokedCertificate: Sendable, Hashable {
    /// The certificate's serial number, as `CertificateSerial` prints it (`0c:ff:01`).
    public var serial: String
    public var node: String
    public var revokedAt: Date
    /// What the operator or the controller gave as the reason (`removed from the spec`).
    public var reason: String

    public init(serial: String, node: String, revokedAt: Date, reason: String) {
        self.serial = serial
        self.node = node
        self.revokedAt = revokedAt
        self.reason = reason
    }
}
