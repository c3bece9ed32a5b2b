import Foundation
import SwiftASN1
import X509

extension JoinRequest {
    /// The PEM certificate and CA certificate to keep, once `certificateDER` (as the controller
    /// sent it) is checked: `caCertificateDER` is the CA `pin` pins, the certificate is signed by
    /// it, names `spiffe://CLUSTER/node/NAME` and carries this request's key. Throws
    /// `IdentityError` naming what is wrong.
    public func accept(
        certificateDER: [UInt8], caCertificateDER: [UInt8], pin: PinnedCAVerifier, now: Date
    ) throws -> (certificatePEM: String, caCertificatePEM: String) {
        guard pin.isPinned(caCertificateDER) else {
            throw IdentityError.untrusted(
                subject: "the CA certificate the controller sent",
                reason: "its SHA-256 fingerprint is not the one the join token pins")
        }
        let ca: Certificate
        let certificate: Certificate
        do {
            ca = try Certificate(derEncoded: caCertificateDER)
            certificate = try Certificate(derEncoded: certificateDER)
        } catch {
            throw IdentityError.unreadable(what: "the certificate the controller issued", reason: "\(error)")
        }
        guard certificate.publicKey == Certificate.PublicKey(privateKey.publicKey) else {
            throw IdentityError.untrusted(
                subject: PeerVerifier.describe(certificate), reason: "it is not for the key this host made")
        }
        switch PeerVerifier(ca: ca, cluster: pin.cluster).verify(
            leafDER: certificateDER, peer: "the controller", now: now,
            expected: { identity in
                if case .node(let cluster, _) = identity, cluster == pin.cluster { return nil }
                return "spiffe://\(pin.cluster)/node/NAME"
            })
        {
        case .success: break
        case .failure(let error): throw error
        }
        return (try certificate.serializeAsPEM().pemString, try ca.serializeAsPEM().pemString)
    }
}
