import Foundation
import MeshwardCore
import X509

/// Checks a TLS peer's certificate against the cluster CA, the only trust root: issued and
/// signed by the CA, not revoked, inside its validity window, and carrying the expected
/// SPIFFE identity.
public struct PeerVerifier: Sendable {
    public let ca: Certificate
    public let cluster: String
    /// The serials refused although the CA signed them.
    public let revocations: RevocationList

    public init(ca: Certificate, cluster: String, revocations: RevocationList = .empty) {
        self.ca = ca
        self.cluster = cluster
        self.revocations = revocations
    }

    /// The identity of the certificate `der` (the leaf of the peer's chain), or the reason it is
    /// refused. `expected` returns nil when the identity is acceptable, or what was expected.
    public func verify(
        leafDER: [UInt8]?, peer: String, now: Date, expected: (SPIFFEIdentity) -> String?
    ) -> Result<SPIFFEIdentity, IdentityError> {
        guard let leafDER else { return .failure(.noCertificate(peer: peer)) }
        let leaf: Certificate
        do {
            leaf = try Certificate(derEncoded: leafDER)
        } catch {
            return .failure(.unreadable(what: "the certificate of \(peer)", reason: "\(error)"))
        }
        let subject = Self.describe(leaf)
        guard leaf.issuer == ca.subject, ca.publicKey.isValidSignature(leaf.signature, for: leaf) else {
            return .failure(.untrusted(subject: subject, reason: "its signature does not verify with the cluster CA"))
        }
        let formatter = ISO8601DateFormatter()
        if let revoked = revocations.revocation(of: "\(leaf.serial)") {
            return .failure(
                .revoked(
                    serial: "\(leaf.serial)", node: revoked.node,
                    revokedAt: formatter.string(from: revoked.revokedAt), reason: revoked.reason))
        }
        if now < leaf.notValidBefore {
            return .failure(
                .notYetValid(
                    subject: subject, notBefore: formatter.string(from: leaf.notValidBefore),
                    now: formatter.string(from: now)))
        }
        if now > leaf.notValidAfter {
            return .failure(
                .expired(
                    subject: subject, notAfter: formatter.string(from: leaf.notValidAfter),
                    now: formatter.string(from: now)))
        }
        guard let identity = Self.identity(of: leaf) else { return .failure(.noIdentity(subject: subject)) }
        if let wanted = expected(identity) {
            return .failure(.wrongIdentity(expected: wanted, presented: subject))
        }
        return .success(identity)
    }

    /// The SPIFFE identity a certificate carries, if any.
    public static func identity(of certificate: Certificate) -> SPIFFEIdentity? {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return nil }
        for name in names {
            if case .uniformResourceIdentifier(let uri) = name, let identity = SPIFFEIdentity(uri: uri) {
                return identity
            }
        }
        return nil
    }

    /// The certificate's SPIFFE URI (or subject when it has none), with its serial, for messages.
    public static func describe(_ certificate: Certificate) -> String {
        let name = identity(of: certificate)?.uri ?? "\(certificate.subject)"
        return "\(name) (serial \(certificate.serial))"
    }
}

extension PeerVerifier {
    /// The IP addresses a certificate names (an agent certificate names its node's).
    public static func addresses(of certificate: Certificate) -> [IPAddress] {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { name in
            guard case .ipAddress(let octets) = name else { return nil }
            return IPAddress(bytes: Array(octets.bytes))
        }
    }
}

extension PeerVerifier {
    /// When `certificate` starts and stops being valid.
    public static func validity(of certificate: Certificate) -> ClosedRange<Date> {
        certificate.notValidBefore...max(certificate.notValidBefore, certificate.notValidAfter)
    }

    /// The validity of the DER certificate `der`; nil when it does not parse.
    public static func validity(ofDER der: [UInt8]) -> ClosedRange<Date>? {
        (try? Certificate(derEncoded: der)).map(validity(of:))
    }

    /// The serial of the certificate `der`, in `CertificateSerial`'s form; nil when it does not parse.
    public static func serial(ofDER der: [UInt8]) -> String? {
        (try? Certificate(derEncoded: der)).map { "\($0.serial)" }
    }
}
