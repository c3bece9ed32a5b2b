import AgentWire
import Foundation
import GRPCCore
import Identity
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The agent's side of one `Enroll` stream: the controller's nonce, the agent's claim (token
/// id, CSR, proof over this session), the controller's certificate or refusal, and once the
/// directory is written the acknowledgement.
struct EnrollmentHandler: Meshward_Agent_V1_EnrollmentService.SimpleServiceProtocol {
    let node: String
    let token: JoinToken
    let request: JoinRequest
    let pin: ControllerPin
    let directory: AgentDirectory
    let tokenFile: String?
    let now: @Sendable () -> Date
    let outcomes: EnrollmentOutcomes
    let logger: Logger

    func enroll(
        request messages: RPCAsyncSequence<Meshward_Agent_V1_EnrollRequest, any Error>,
        response: RPCWriter<Meshward_Agent_V1_EnrollReply>, context: ServerContext
    ) async throws {
        var incoming = messages.makeAsyncIterator()
        guard let first = try await incoming.next() else {
            throw RPCError(code: .invalidArgument, message: "the enrollment stream ended before the controller's nonce")
        }
        let nonce: [UInt8]
        do {
            nonce = try EnrollmentWire.nonce(from: first)
        } catch {
            throw RPCError(code: .invalidArgument, message: "\(error)")
        }
        guard let controllerDER = pin.lastAccepted else {
            throw RPCError(code: .failedPrecondition, message: "no controller certificate was accepted in this session")
        }
        let csrDER = try request.csrDER
        let proof = EnrollmentProof.make(
            verifier: token.verifier, nonce: nonce, agentCertificateDER: try request.provisionalCertificateDER,
            controllerCertificateDER: controllerDER, csrDER: csrDER)
        try await response.write(
            EnrollmentWire.message(EnrollmentWire.Claim(tokenID: token.id, csrDER: csrDER, proof: proof)))
        guard let second = try await incoming.next() else {
            throw RPCError(
                code: .invalidArgument, message: "the enrollment stream ended before the controller's result")
        }
        let outcome: EnrollmentWire.Outcome
        do {
            outcome = try EnrollmentWire.outcome(from: second)
        } catch {
            throw RPCError(code: .invalidArgument, message: "\(error)")
        }
        switch outcome {
        case .refused(let reason):
            outcomes.refusal(reason)
            logger.warning(
                "the controller refused the enrollment", metadata: ["node": "\(node)", "reason": "\(reason)"])
        case .issued(let certificateDER, let caDER):
            let credentials: AgentCredentials
            do {
                let accepted = try request.accept(
                    certificateDER: certificateDER, caCertificateDER: caDER, pin: pin.verifier, now: now())
                credentials = AgentCredentials(
                    caCertificatePEM: accepted.caCertificatePEM, certificatePEM: accepted.certificatePEM,
                    privateKeyPEM: request.privateKeyPEM)
                try directory.prepare()
                try directory.writeCredentials(credentials)
            } catch {
                logger.error(
                    "could not keep the issued certificate", metadata: ["node": "\(node)", "error": "\(error)"])
                throw RPCError(
                    code: .failedPrecondition, message: "node \(node) did not keep its certificate: \(error)")
            }
            removeTokenFile()
            logger.notice(
                "enrolled; serving the node's kernel with the issued certificate from now on",
                metadata: ["node": "\(node)", "token": "\(token.id)", "directory": "\(directory.path)"])
            outcomes.enrolled(credentials)
            try await response.write(EnrollmentWire.stored())
        }
        // The controller closes its side once it has read the last reply: returning only then
        // keeps the server from ending the stream before that reply is flushed.
        while try await incoming.next() != nil {}
    }

    private func removeTokenFile() {
        guard let tokenFile else { return }
        if unlink(tokenFile) != 0 && errno != ENOENT {
            logger.warning(
                "could not delete the spent join token file",
                metadata: ["path": "\(tokenFile)", "error": "\(String(cString: strerror(errno)))"])
        }
    }
}
