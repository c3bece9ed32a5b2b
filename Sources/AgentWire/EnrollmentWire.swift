import Foundation

/// The messages of the `Enroll` exchange (EnrollmentService), checked as they are read.
///
/// One stream carries, in order: the controller's nonce, the agent's claim (token id, CSR DER,
/// proof), the controller's result (certificate and CA certificate, DER) or refusal, and the
/// agent's acknowledgement that its directory is written. A message out of that order, or with a
/// field of the wrong shape, is refused naming the step and the field.
public enum EnrollmentWire {
    /// The size of the controller's nonce (EnrollmentProof.nonceCount).
    public static let nonceCount = 32
    /// The size of an HMAC-SHA256 proof.
    public static let proofCount = 32

    /// What the agent answers to the nonce.
    public struct Claim: Sendable, Equatable {
        public var tokenID: String
        public var csrDER: [UInt8]
        public var proof: [UInt8]

        public init(tokenID: String, csrDER: [UInt8], proof: [UInt8]) {
            self.tokenID = tokenID
            self.csrDER = csrDER
            self.proof = proof
        }
    }

    /// What the controller sends after the claim.
    public enum Outcome: Sendable, Equatable {
        case issued(certificateDER: [UInt8], caCertificateDER: [UInt8])
        case refused(String)
    }

    // MARK: Controller to agent

    public static func challenge(nonce: [UInt8]) -> Meshward_Agent_V1_EnrollRequest {
        var message = Meshward_Agent_V1_EnrollRequest()
        message.protocolVersion = WireCodec.firstProtocolVersion
        message.nonce = Data(nonce)
        return message
    }

    /// The nonce of the stream's first message.
    public static func nonce(from message: Meshward_Agent_V1_EnrollRequest) throws(WireError) -> [UInt8] {
        guard case .nonce(let nonce) = message.step else {
            throw .malformed("an enrollment request whose first message is \(describe(message.step)), not the nonce")
        }
        guard nonce.count == nonceCount else {
            throw .malformed("an enrollment nonce of \(nonce.count) bytes, not \(nonceCount)")
        }
        return Array(nonce)
    }

    public static func message(_ outcome: Outcome) -> Meshward_Agent_V1_EnrollRequest {
        var message = Meshward_Agent_V1_EnrollRequest()
        message.protocolVersion = WireCodec.firstProtocolVersion
        switch outcome {
        case .issued(let certificate, let ca):
            var result = Meshward_Agent_V1_EnrollmentResult()
            result.certificate = Data(certificate)
            result.caCertificate = Data(ca)
            message.result = result
        case .refused(let reason):
            message.refusal = reason
        }
        return message
    }

    /// The controller's second message: the issued certificate or why it refuses.
    public static func outcome(from message: Meshward_Agent_V1_EnrollRequest) throws(WireError) -> Outcome {
        switch message.step {
        case .result(let result):
            guard !result.certificate.isEmpty else { throw .malformed("an enrollment result without a certificate") }
            guard !result.caCertificate.isEmpty else {
                throw .malformed("an enrollment result without the CA certificate")
            }
            return .issued(certificateDER: Array(result.certificate), caCertificateDER: Array(result.caCertificate))
        case .refusal(let reason):
            return .refused(reason.isEmpty ? "the controller gave no reason" : reason)
        case .nonce, nil:
            throw .malformed(
                "an enrollment request whose second message is \(describe(message.step)), not a result or refusal")
        }
    }

    // MARK: Agent to controller

    public static func message(_ claim: Claim) -> Meshward_Agent_V1_EnrollReply {
        var message = Meshward_Agent_V1_EnrollReply()
        message.protocolVersion = WireCodec.firstProtocolVersion
        var body = Meshward_Agent_V1_EnrollmentClaim()
        body.tokenID = claim.tokenID
        body.csr = Data(claim.csrDER)
        body.proof = Data(claim.proof)
        message.claim = body
        return message
    }

    /// The agent's first message: token id (16 lower-case hex digits), CSR and a 32-byte proof.
    public static func claim(from message: Meshward_Agent_V1_EnrollReply) throws(WireError) -> Claim {
        guard case .claim(let claim) = message.step else {
            throw .malformed("an enrollment reply whose first message is not the claim (token id, CSR, proof)")
        }
        let hex = Set("0123456789abcdef")
        guard claim.tokenID.count == 16, claim.tokenID.allSatisfy(hex.contains) else {
            throw .malformed("an enrollment claim whose token id '\(claim.tokenID)' is not 16 lower-case hex digits")
        }
        guard !claim.csr.isEmpty else { throw .malformed("an enrollment claim without a CSR") }
        guard claim.proof.count == proofCount else {
            throw .malformed("an enrollment proof of \(claim.proof.count) bytes, not \(proofCount)")
        }
        return Claim(tokenID: claim.tokenID, csrDER: Array(claim.csr), proof: Array(claim.proof))
    }

    public static func stored() -> Meshward_Agent_V1_EnrollReply {
        var message = Meshward_Agent_V1_EnrollReply()
        message.protocolVersion = WireCodec.firstProtocolVersion
        message.stored = true
        return message
    }

    /// Whether the agent's last message says its directory is written.
    public static func isStored(_ message: Meshward_Agent_V1_EnrollReply) throws(WireError) -> Bool {
        guard case .stored(let stored) = message.step else {
            throw .malformed("an enrollment reply whose last message is not the acknowledgement")
        }
        return stored
    }

    static func describe(_ step: Meshward_Agent_V1_EnrollRequest.OneOf_Step?) -> String {
        switch step {
        case .nonce: "the nonce"
        case .result: "a result"
        case .refusal: "a refusal"
        case nil: "empty"
        }
    }
}
