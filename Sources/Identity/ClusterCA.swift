import Crypto
import Foundation
import MeshwardCore
import SwiftASN1
import X509

/// The cluster's certificate authority: an ECDSA P-256 key and its self-signed certificate.
///
/// It issues agent certificates (`spiffe://CLUSTER/node/NAME` plus the node's addresses) and
/// controller certificates (`spiffe://CLUSTER/controller`). It is kept sealed in the Store; only
/// its certificate leaves the controller.
public struct ClusterCA: Sendable {
    public let cluster: String
    public let certificate: Certificate
    let privateKey: P256.Signing.PrivateKey

    /// How long a new CA is valid.
    public static let validity: Duration = .seconds(10 * 365 * 86_400)

    /// A new CA for `cluster`, valid from a minute before `now` (clock skew) for ten years.
    public static func create(cluster: String, now: Date) throws -> ClusterCA {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Meshward")
            CommonName("Meshward cluster CA \(cluster)")
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(validity.timeInterval),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://\(cluster)")])
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
        return ClusterCA(cluster: cluster, certificate: certificate, privateKey: key)
    }

    /// A CA read back from its PEM certificate and its private key's DER bytes.
    public init(cluster: String, certificatePEM: String, privateKeyDER: [UInt8]) throws {
        do {
            self.certificate = try Certificate(pemEncoded: certificatePEM)
        } catch {
            throw IdentityError.unreadable(what: "the cluster CA certificate", reason: "\(error)")
        }
        do {
            self.privateKey = try P256.Signing.PrivateKey(derRepresentation: privateKeyDER)
        } catch {
            throw IdentityError.unreadable(what: "the cluster CA key", reason: "\(error)")
        }
        self.cluster = cluster
    }

    init(cluster: String, certificate: Certificate, privateKey: P256.Signing.PrivateKey) {
        self.cluster = cluster
        self.certificate = certificate
        self.privateKey = privateKey
    }

    /// The CA certificate as PEM.
    public var certificatePEM: String {
        get throws { try certificate.serializeAsPEM().pemString }
    }

    /// The CA's private key as DER, for sealing in the Store. Never written anywhere else.
    public var privateKeyDER: [UInt8] { Array(privateKey.derRepresentation) }

    /// A new key and a certificate for `identity`, valid from a minute before `now` for `validity`.
    /// An agent certificate also names the node's `addresses`.
    public func issue(
        for identity: SPIFFEIdentity, addresses: [IPAddress] = [], now: Date, validity: Duration
    ) throws -> IssuedCredential {
        let key = P256.Signing.PrivateKey()
        let certificate = try issueCertificate(
            for: identity, publicKey: Certificate.PublicKey(key.publicKey), addresses: addresses,
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(validity.timeInterval))
        return IssuedCredential(certificate: certificate, privateKey: key)
    }

    /// A certificate for `identity` and `publicKey` with an explicit validity window (tests use
    /// this to make expired and not-yet-valid certificates).
    public func issueCertificate(
        for identity: SPIFFEIdentity, publicKey: Certificate.PublicKey, addresses: [IPAddress],
        notValidBefore: Date, notValidAfter: Date
    ) throws -> Certificate {
        var names: [GeneralName] = [.uniformResourceIdentifier(identity.uri)]
        for address in addresses {
            names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(address.bytes))))
        }
        let commonName: String
        switch identity {
        case .node(_, let name): commonName = name
        case .controller: commonName = "controller"
        }
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: notValidBefore, notValidAfter: notValidAfter, issuer: certificate.subject,
            subject: try DistinguishedName {
                OrganizationName("Meshward \(cluster)")
                CommonName(commonName)
            },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: Certificate.PrivateKey(privateKey))
    }
}

/// A private key and the certificate the cluster CA issued for it.
public struct IssuedCredential: Sendable {
    public let certificate: Certificate
    let privateKey: P256.Signing.PrivateKey

    public init(certificatePEM: String, privateKeyPEM: String) throws {
        do {
            self.certificate = try Certificate(pemEncoded: certificatePEM)
        } catch {
            throw IdentityError.unreadable(what: "a certificate", reason: "\(error)")
        }
        do {
            self.privateKey = try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        } catch {
            throw IdentityError.unreadable(what: "a private key", reason: "\(error)")
        }
    }

    init(certificate: Certificate, privateKey: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.privateKey = privateKey
    }

    public var certificatePEM: String {
        get throws { try certificate.serializeAsPEM().pemString }
    }

    /// The certificate's serial number as the Store records it and the revocation list names it
    /// (`CertificateSerial`: two hex digits per byte, `0c:ff:01`).
    public var serial: String { certificate.serial.description }

    /// When the certificate stops being valid.
    public var notValidAfter: Date { certificate.notValidAfter }

    /// Whether the certificate is for this private key.
    public var keyMatches: Bool { certificate.publicKey == Certificate.PublicKey(privateKey.publicKey) }

    /// The private key as PEM: written only to a 0600 file or sealed in the Store.
    public var privateKeyPEM: String { privateKey.pemRepresentation }
}

extension Duration {
    var timeInterval: TimeInterval {
        let parts = components
        return TimeInterval(parts.seconds) + TimeInterval(parts.attoseconds) / 1e18
    }
}

extension ClusterCA {
    /// A CA certificate read from PEM, as an agent holds it (without the key).
    public static func certificate(pem: String) throws -> Certificate {
        do {
            return try Certificate(pemEncoded: pem)
        } catch {
            throw IdentityError.unreadable(what: "the cluster CA certificate", reason: "\(error)")
        }
    }
}
