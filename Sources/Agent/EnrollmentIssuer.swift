import Foundation

/// The controller's decision on a joining agent's claim (EnrollmentAuthority in the
/// controller): the certificate for the node, or an error whose description says why not.
public protocol EnrollmentIssuer: Sendable {
    /// The node's certificate and the CA certificate (PEM) for the claim (token id, CSR DER,
    /// proof) received in the TLS session in which the controller sent `nonce`, the agent
    /// presented `agentCertificateDER` and the controller `controllerCertificateDER`. Nothing is
    /// issued when it throws.
    func issue(
        node: String, tokenID: String, csrDER: [UInt8], proof: [UInt8], nonce: [UInt8],
        agentCertificateDER: [UInt8], controllerCertificateDER: [UInt8]
    ) async throws -> (certificatePEM: String, caCertificatePEM: String)
}
