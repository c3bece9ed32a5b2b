import Crypto
import Foundation
import MeshwardCore
import SwiftASN1
import X509

/// An enrolled agent's next key during a certificate renewal: made on the agent, which sends
/// only its CSR, and kept in memory until the certificate for it arrives. The current key and
/// certificate keep serving meanwhile; a renewal that never completes leaves them as they were.
public struct RenewalKey: Sendable {
    public let cluster: String
    public let node: String
    public let csr: CertificateSigningRequest
    let privateKey: P256.Signing.PrivateKey

    /// A new P-256 key for `node` of `cluster`, and a CSR naming `spiffe://CLUSTER/node/NAME`.
    public init(cluster: String, node: String) throws {
        let key = P256.Signing.PrivateKey()
        csr = try Self.nodeCSR(cluster: cluster, node: node, addresses: [], key: key)
        self.cluster = cluster
        self.node = node
        self.privateKey = key
    }

    /// A CSR signed by `key` for `node` of `cluster`: `spiffe://CLUSTER/node/NAME` and
    /// `addresses` as subject alternative names, the node as common name.
    static func nodeCSR(
        cluster: String, node: String, addresses: [IPAddress], key: P256.Signing.PrivateKey
    ) throws -> CertificateSigningRequest {
        var names: [GeneralName] = [.uniformResourceIdentifier(SPIFFEIdentity.node(cluster: cluster, name: node).uri)]
        for address in addresses {
            names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(address.bytes))))
        }
        let extensions = try Certificate.Extensions { SubjectAlternativeNames(names) }
        return try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName(node) },
            privateKey: Certificate.PrivateKey(key),
            attributes: CertificateSigningRequest.Attributes([
                try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions))
            ]),
            signatureAlgorithm: .ecdsaWithSHA256)
    }

    /// The CSR's DER.
    public var csrDER: [UInt8] {
        get throws {
            var serializer = DER.Serializer()
            try serializer.serialize(csr)
            return serializer.serializedBytes
        }
    }

    /// The new key as PEM: written 0600 to the agent directory with its certificate. Never logged.
    public var privateKeyPEM: String { privateKey.pemRepresentation }

    /// The certificate to keep as PEM, once `certificateDER` (as the controller sent it) is
    /// checked: signed by `ca` (the CA the agent already holds), inside its validity window at
    /// `now`, naming this node of this cluster, and for this key. Throws `IdentityError`
    /// naming what is wrong; nothing is kept then.
    public func accept(certificateDER: [UInt8], ca: Certificate, now: Date) throws -> String {
        let certificate: Certificate
        do {
            certificate = try Certificate(derEncoded: certificateDER)
        } catch {
            throw IdentityError.unreadable(what: "the renewed certificate the controller sent", reason: "\(error)")
        }
        guard certificate.publicKey == Certificate.PublicKey(privateKey.publicKey) else {
            throw IdentityError.untrusted(
                subject: PeerVerifier.describe(certificate), reason: "it is not for the key this renewal made")
        }
        let identity = SPIFFEIdentity.node(cluster: cluster, name: node)
        switch PeerVerifier(ca: ca, cluster: cluster).verify(
            leafDER: certificateDER, peer: "the controller", now: now,
            expected: { $0 == identity ? nil : identity.uri })
        {
        case .success: break
        case .failure(let error): throw error
        }
        return try certificate.serializeAsPEM().pemString
    }
}
