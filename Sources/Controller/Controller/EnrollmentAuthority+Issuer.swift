import Agent
import Foundation
import Reconciler

/// The controller's enrollment checks behind the agent connection: a claim that arrives over
/// `Enroll` is checked as `EnrollmentAuthority.enroll` checks it, at the time `now` gives.
struct EnrollmentIssuerAdapter: EnrollmentIssuer {
    let authority: EnrollmentAuthority
    let now: @Sendable () -> Date

    func issue(
        node: String, tokenID: String, csrDER: [UInt8], proof: [UInt8], nonce: [UInt8],
        agentCertificateDER: [UInt8], controllerCertificateDER: [UInt8]
    ) async throws -> (certificatePEM: String, caCertificatePEM: String) {
        let issued = try await authority.enroll(
            node: node, request: EnrollmentRequest(tokenID: tokenID, csrDER: csrDER, proof: proof),
            session: EnrollmentSession(
                nonce: nonce, agentCertificateDER: agentCertificateDER,
                controllerCertificateDER: controllerCertificateDER),
            now: now())
        return (issued.certificatePEM, issued.caCertificatePEM)
    }
}

extension EnrollmentAuthority {
    /// This authority as the agent connector's issuer, checking each claim at `now()`.
    public func issuer(now: @escaping @Sendable () -> Date) -> any EnrollmentIssuer {
        EnrollmentIssuerAdapter(authority: self, now: now)
    }
}
