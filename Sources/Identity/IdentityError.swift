/// A certificate or credential problem, said so that an operator can act on it.
public enum IdentityError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A PEM or DER value could not be read.
    case unreadable(what: String, reason: String)
    /// The peer presented no certificate.
    case noCertificate(peer: String)
    /// The certificate is outside its validity window.
    case expired(subject: String, notAfter: String, now: String)
    case notYetValid(subject: String, notBefore: String, now: String)
    /// The certificate was not issued by the cluster CA.
    case untrusted(subject: String, reason: String)
    /// The certificate carries no SPIFFE URI Meshward understands.
    case noIdentity(subject: String)
    /// The certificate speaks for someone other than expected.
    case wrongIdentity(expected: String, presented: String)
    /// The certificate's serial is on the cluster's revocation list.
    case revoked(serial: String, node: String, revokedAt: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let what, let reason):
            "cannot read \(what): \(reason)"
        case .noCertificate(let peer):
            "\(peer) presented no certificate"
        case .expired(let subject, let notAfter, let now):
            "certificate \(subject) expired at \(notAfter) (now \(now)); issue a new one with `meshward agent credentials`"
        case .notYetValid(let subject, let notBefore, let now):
            "certificate \(subject) is not yet valid: valid from \(notBefore) (now \(now)); check the clocks"
        case .untrusted(let subject, let reason):
            "certificate \(subject) is not issued by this cluster's CA: \(reason)"
        case .noIdentity(let subject):
            "certificate \(subject) carries no spiffe:// identity of a Meshward node or controller"
        case .wrongIdentity(let expected, let presented):
            "expected \(expected), but the certificate that answered is \(presented)"
        case .revoked(let serial, let node, let revokedAt, let reason):
            "certificate serial \(serial) of node \(node) was revoked at \(revokedAt) (\(reason))"
        }
    }
}
