import AgentWire
import Foundation
import Testing

/// The messages of the `Enroll` exchange, through their protobuf encoding and back.
@Suite("enrollment wire: the Enroll stream's messages")
struct EnrollmentWireTests {
    static let nonce = (0..<32).map { UInt8($0) }
    static let claim = EnrollmentWire.Claim(
        tokenID: "0011223344556677", csrDER: [0x30, 0x03, 0x02, 0x01, 0x00], proof: Array(repeating: 7, count: 32))

    static func overTheWire(_ message: Meshward_Agent_V1_EnrollRequest) throws -> Meshward_Agent_V1_EnrollRequest {
        try Meshward_Agent_V1_EnrollRequest(serializedBytes: try message.serializedBytes() as [UInt8])
    }

    static func overTheWire(_ message: Meshward_Agent_V1_EnrollReply) throws -> Meshward_Agent_V1_EnrollReply {
        try Meshward_Agent_V1_EnrollReply(serializedBytes: try message.serializedBytes() as [UInt8])
    }

    @Test("the nonce, the claim, the issued certificate, a refusal and the acknowledgement read back as sent")
    func roundTrip() throws {
        #expect(
            try EnrollmentWire.nonce(from: Self.overTheWire(EnrollmentWire.challenge(nonce: Self.nonce))) == Self.nonce)
        #expect(try EnrollmentWire.claim(from: Self.overTheWire(EnrollmentWire.message(Self.claim))) == Self.claim)
        let issued = EnrollmentWire.Outcome.issued(certificateDER: [1, 2, 3], caCertificateDER: [4, 5])
        #expect(try EnrollmentWire.outcome(from: Self.overTheWire(EnrollmentWire.message(issued))) == issued)
        let refused = EnrollmentWire.Outcome.refused("join token 0011223344556677 was spent at T")
        #expect(try EnrollmentWire.outcome(from: Self.overTheWire(EnrollmentWire.message(refused))) == refused)
        #expect(try EnrollmentWire.isStored(Self.overTheWire(EnrollmentWire.stored())))
    }

    @Test(
        "a nonce that is not 32 bytes, or a first message that is not the nonce, is refused naming what it is",
        arguments: [
            (EnrollmentWire.challenge(nonce: Array(repeating: 1, count: 31)), "nonce of 31 bytes, not 32"),
            (EnrollmentWire.challenge(nonce: []), "nonce of 0 bytes, not 32"),
            (EnrollmentWire.message(.refused("no")), "first message is a refusal, not the nonce"),
            (Meshward_Agent_V1_EnrollRequest(), "first message is empty, not the nonce"),
        ])
    func badNonce(message: Meshward_Agent_V1_EnrollRequest, expected: String) throws {
        let error = #expect(throws: WireError.self) { try EnrollmentWire.nonce(from: Self.overTheWire(message)) }
        #expect("\(error!)".contains(expected), "\(error!)")
    }

    @Test(
        "a claim with a token id not 16 lower-case hex digits, no CSR or a proof not 32 bytes is refused naming the field",
        arguments: [
            (
                EnrollmentWire.Claim(tokenID: "0011223344556677AA", csrDER: [1], proof: Array(repeating: 0, count: 32)),
                "token id '0011223344556677AA'"
            ),
            (
                EnrollmentWire.Claim(tokenID: "00112233445566ZZ", csrDER: [1], proof: Array(repeating: 0, count: 32)),
                "token id '00112233445566ZZ'"
            ),
            (
                EnrollmentWire.Claim(tokenID: "0011223344556677", csrDER: [], proof: Array(repeating: 0, count: 32)),
                "without a CSR"
            ),
            (
                EnrollmentWire.Claim(tokenID: "0011223344556677", csrDER: [1], proof: Array(repeating: 0, count: 31)),
                "proof of 31 bytes, not 32"
            ),
        ])
    func badClaim(claim: EnrollmentWire.Claim, expected: String) throws {
        let error = #expect(throws: WireError.self) {
            try EnrollmentWire.claim(from: Self.overTheWire(EnrollmentWire.message(claim)))
        }
        #expect("\(error!)".contains(expected), "\(error!)")
    }

    @Test("a claim arriving where the acknowledgement belongs, or a nonce where the result belongs, is refused")
    func outOfOrder() throws {
        #expect(throws: WireError.self) {
            try EnrollmentWire.isStored(Self.overTheWire(EnrollmentWire.message(Self.claim)))
        }
        #expect(throws: WireError.self) { try EnrollmentWire.claim(from: Self.overTheWire(EnrollmentWire.stored())) }
        let error = #expect(throws: WireError.self) {
            try EnrollmentWire.outcome(from: Self.overTheWire(EnrollmentWire.challenge(nonce: Self.nonce)))
        }
        #expect("\(error!)".contains("second message is the nonce, not a result or refusal"), "\(error!)")
    }
}
