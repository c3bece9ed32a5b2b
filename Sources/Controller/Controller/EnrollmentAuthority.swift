import DesiredState
import Foundation
import Identity
import MeshwardCore
import Reconciler
import Store

/// What a joining agent sends in answer to the controller's nonce: the token's id, its CSR, and
/// the proof (`EnrollmentProof`) over this TLS session.
public struct EnrollmentRequest: Sendable {
    public var tokenID: String
    public var csrDER: [UInt8]
    public var proof: [UInt8]

    public init(tokenID: String, csrDER: [UInt8], proof: [UInt8]) {
        self.tokenID = tokenID
        self.csrDER = csrDER
        self.proof = proof
    }
}

/// What the controller saw of one TLS session with a joining agent: the nonce it sent, the
/// agent's provisional certificate and its own certificate, each as DER.
public struct EnrollmentSession: Sendable {
    public var nonce: [UInt8]
    public var agentCertificateDER: [UInt8]
    public var controllerCertificateDER: [UInt8]

    public init(nonce: [UInt8], agentCertificateDER: [UInt8], controllerCertificateDER: [UInt8]) {
        self.nonce = nonce
        self.agentCertificateDER = agentCertificateDER
        self.controllerCertificateDER = controllerCertificateDER
    }
}

/// The certificate an enrolled agent receives, with the cluster CA certificate.
public struct EnrolledCertificate: Sendable {
    public var certificatePEM: String
    public var caCertificatePEM: String
}

/// The controller's side of enrollment, without the transport: checks a joining agent's request
/// against the Store's token and the session it arrived in, spends the token and issues the
/// node's certificate.
///
/// Nothing is issued unless every check passes, and the token is spent only then: a refused
/// request leaves it as it was. The certificate is made before the spend and returned only
/// after it, so a token spent by another controller at the same moment issues nothing here.
public struct EnrollmentAuthority: Sendable {
    let store: any ControllerStore
    let intent: FleetIntent
    let validity: Duration

    /// - Parameter validity: how long the issued certificate lives; the spec's
    ///   `defaults.certificates.lifetime` when nil.
    public init(store: any ControllerStore, intent: FleetIntent, validity: Duration? = nil) {
        self.store = store
        self.intent = intent
        self.validity = validity ?? intent.certificateLifetime
    }

    /// Enrolls `node` with `request`, received in `session`, at `now`.
    ///
    /// Throws `EnrollmentError.notAnAgent` or `ControllerError.unknownNode` for a node the spec
    /// does not have behind an agent; `JoinTokenError` for an unknown, spent, revoked or expired
    /// token or one of another node; `EnrollmentError.proofRefused` when the proof does not
    /// verify with the token's verifier and this session (a wrong secret, or a proof made in
    /// another session); `IdentityError` for a CSR that does not parse or verify.
    public func enroll(
        node: String, request: EnrollmentRequest, session: EnrollmentSession, now: Date
    ) async throws -> EnrolledCertificate {
        guard let spec = intent.node(named: node) else {
            throw ControllerError.unknownNode(node, known: intent.nodes.map(\.name).sorted())
        }
        guard case .agent = spec.endpoint else {
            throw EnrollmentError.notAnAgent(node: node, endpoint: spec.endpoint.description)
        }
        guard let token = try await store.joinToken(id: request.tokenID) else {
            throw JoinTokenError.unknown(id: request.tokenID)
        }
        if let refusal = token.refusal(node: node, now: now) { throw refusal }
        guard
            EnrollmentProof.verify(
                request.proof, verifier: token.verifier, nonce: session.nonce,
                agentCertificateDER: session.agentCertificateDER,
                controllerCertificateDER: session.controllerCertificateDER, csrDER: request.csrDER)
        else {
            throw EnrollmentError.proofRefused(node: node, tokenID: token.id)
        }
        let ca = try await ClusterCredentials(store: store, cluster: intent.cluster).certificateAuthority(now: now)
        let certificate = try ca.issue(
            node: node, csrDER: request.csrDER, addresses: spec.addresses, now: now, validity: validity)
        _ = try await store.spendJoinToken(id: token.id, node: node, now: now)
        // Recorded as issued to the node, so that `agent revoke` and a removal from the spec
        // revoke it like a certificate from `agent credentials`.
        try await store.recordIssuedCertificate(
            IssuedCertificate(
                serial: certificate.serial.description, node: node, issuedAt: now,
                notValidAfter: certificate.notValidAfter))
        return EnrolledCertificate(
            certificatePEM: try certificate.serializeAsPEM().pemString, caCertificatePEM: try ca.certificatePEM)
    }
}
