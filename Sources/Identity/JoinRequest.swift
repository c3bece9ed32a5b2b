import Crypto
import Foundation
import MeshwardCore
import SwiftASN1
import X509

/// What a host without credentials makes to join: its own P-256 key (which never leaves it), a
/// provisional self-signed certificate to serve until it is enrolled (CN `meshward-join`,
/// claiming no `spiffe://` identity) and a CSR naming the node and its addresses.
public struct JoinRequest: Sendable {
    /// The common name of every provisional certificate.
    public static let provisionalCommonName = "meshward-join"
    /// How long a provisional certificate is valid.
    public static let provisionalValidity: TimeInterval = 7 * 86_400

    public let node: String
    public let provisionalCertificate: Certificate
    public let csr: CertificateSigningRequest
    let privateKey: P256.Signing.PrivateKey

    /// A new key, provisional certificate and CSR for `node` of `cluster`, naming `addresses`.
    public init(cluster: String, node: String, addresses: [IPAddress], now: Date) throws {
        let key = P256.Signing.PrivateKey()
        let provisionalName = try DistinguishedName { CommonName(Self.provisionalCommonName) }
        provisionalCertificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-60),
            notValidAfter: now.addingTimeInterval(Self.provisionalValidity),
            issuer: provisionalName, subject: provisionalName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
        csr = try RenewalKey.nodeCSR(cluster: cluster, node: node, addresses: addresses, key: key)
        self.node = node
        self.privateKey = key
    }

    /// The provisional certificate's DER, as the TLS session carries it.
    public var provisionalCertificateDER: [UInt8] {
        get throws { try Self.der(provisionalCertificate) }
    }

    /// The CSR's DER.
    public var csrDER: [UInt8] {
        get throws {
            var serializer = DER.Serializer()
            try serializer.serialize(csr)
            return serializer.serializedBytes
        }
    }

    /// The provisional certificate as PEM, to serve.
    public var provisionalCertificatePEM: String {
        get throws { try provisionalCertificate.serializeAsPEM().pemString }
    }

    /// The private key as PEM: served with the provisional certificate, then written 0600 to the
    /// agent directory with the issued one. Never logged.
    public var privateKeyPEM: String { privateKey.pemRepresentation }

    /// Whether `certificate` is a provisional one: CN `meshward-join`, self-issued, no
    /// `spiffe://` identity.
    public static func isProvisional(_ certificate: Certificate) -> Bool {
        let commonNames = certificate.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
        return certificate.issuer == certificate.subject && PeerVerifier.identity(of: certificate) == nil
            && commonNames.map { String($0.value) } == [provisionalCommonName]
    }

    /// The same for a certificate's DER; false when it does not parse.
    public static func isProvisional(der: [UInt8]) -> Bool {
        (try? Certificate(derEncoded: der)).map(isProvisional) ?? false
    }

    static func der(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }
}

extension ClusterCA {
    /// The certificate for an enrolling node: `spiffe://CLUSTER/node/NAME` and `addresses` (the
    /// spec's, whatever the CSR asks for) for the CSR's public key, once the CSR's signature
    /// verifies (its sender holds the key). Throws `IdentityError.unreadable` for a CSR whose
    /// signature does not verify.
    public func issue(
        node: String, csr: CertificateSigningRequest, addresses: [IPAddress], now: Date, validity: Duration
    ) throws -> Certificate {
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw IdentityError.unreadable(
                what: "the certificate signing request of node \(node)",
                reason: "its signature does not verify with its own public key")
        }
        return try issueCertificate(
            for: .node(cluster: cluster, name: node), publicKey: csr.publicKey, addresses: addresses,
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(validity.timeInterval))
    }
}

extension ClusterCA {
    /// The same, from the CSR's DER as it arrives; a CSR that does not parse is
    /// `IdentityError.unreadable`, naming the node.
    public func issue(
        node: String, csrDER: [UInt8], addresses: [IPAddress], now: Date, validity: Duration
    ) throws -> Certificate {
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(derEncoded: csrDER)
        } catch {
            throw IdentityError.unreadable(what: "the certificate signing request of node \(node)", reason: "\(error)")
        }
        return try issue(node: node, csr: csr, addresses: addresses, now: now, validity: validity)
    }
}
