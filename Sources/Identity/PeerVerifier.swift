import Foundation
import MeshwardCore
import X509

/// Checks a TLS peer's certificate against the cluster CA, the only trust root: issued and
/// signed by the CA, inside its validity window, and carrying the expected SPIFFE identity.
public struct PeerVerifier: Sendable {
    public let ca: Certificate
    public let cluster: String

    public init(ca: Certificate, cluster: String) {
        self.ca = ca
        self.cluster = cluster
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
        return "\(name) (serial \(certificate.serialNumber))"
    }
}

extension PeerVerifier {
    /// When the certificate `der` stops being valid; nil when it cannot be read.
    public static func notValidAfter(leafDER der: [UInt8]) -> Date? {
        (try? Certificate(derEncoded: der))?.notValidAfter
    }

    /// The IP addresses a certificate names (an agent certificate names its node's).
    public static func addresses(of certificate: Certificate) -> [IPAddress] {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { name in
            guard case .ipAddress(let octets) = name else { return nil }
            return IPAddress(bytes: Array(octets.bytes))
        }
    }
}
