import AgentWire
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Identity
import Kernel
import NIOCore
import NIOSSL
import Synchronization

extension AgentKernel {
    /// Enrolls the joining agent at this kernel's address, before `deadline`: one `Enroll`
    /// exchange (nonce, claim, certificate or refusal, acknowledgement) on a connection of its
    /// own, on which the controller accepts only a provisional certificate and presents its
    /// chain up to the CA (the agent pins the CA's fingerprint). The connection that carries
    /// observe and apply never accepts anything but the node's certificate from the cluster CA,
    /// so no key ever goes to a provisional peer.
    ///
    /// Returns once the agent acknowledged that it stored its credentials. Throws
    /// `KernelError.waitingForEnrollment` with the reason otherwise: no issuer, the
    /// controller's refusal, or a transport failure.
    func enroll(deadline: ContinuousClock.Instant) async throws {
        guard let enrollment else {
            throw KernelError.waitingForEnrollment(
                node: node,
                reason:
                    "the agent at \(address) serves a provisional certificate (it holds a join token); "
                    + "`meshward apply` or `reconcile` enrolls it")
        }
        let seen = SeenCertificate()
        let address = self.address
        let verify: ControlChannelTLS.Verification = { certificates, promise in
            let leaf = try? certificates.first?.toDERBytes()
            guard let leaf, JoinRequest.isProvisional(der: leaf) else {
                promise.succeed(.failed)
                return
            }
            seen.set(leaf)
            promise.succeed(.certificateVerified(VerificationMetadata(nil)))
        }
        let controllerDER: [UInt8]
        let client: GRPCClient<HTTP2ClientTransport.Posix>
        do {
            controllerDER = try EnrollmentExchange.der(pem: credentials.certificatePEM)
            // The controller presents its chain up to the CA: the agent pins the CA's fingerprint.
            let configuration = try ControlChannelTLS.configuration(
                role: .client, certificateChain: [credentials.certificatePEM, credentials.caCertificatePEM],
                privateKeyPEM: credentials.privateKeyPEM, trustRootsPEM: [credentials.caCertificatePEM])
            client = GRPCClient(
                transport: try Self.transport(
                    to: Self.target(host: host, port: port), configuration: configuration, verify: verify,
                    handshakes: enrollmentHandshakes, role: "enrollment connection to \(node) at \(address)",
                    logger: logger))
        } catch {
            throw KernelError.waitingForEnrollment(
                node: node, reason: "cannot set up the enrollment connection: \(error)")
        }
        let connections = Task(executorPreference: executor) { try? await client.runConnections() }
        defer {
            client.beginGracefulShutdown()
            connections.cancel()
        }
        let exchange = EnrollmentExchange(
            node: node, issuer: enrollment, nonce: EnrollmentProof.nonce(), controllerCertificateDER: controllerDER,
            agentCertificate: { seen.value })
        let service = Meshward_Agent_V1_EnrollmentService.Client(wrapping: client)
        let result: EnrollmentExchange.Result
        do {
            result = try await onExecutor { [options = options(deadline)] in
                try await service.enroll(
                    options: options, requestProducer: { writer in try await exchange.produce(writer) },
                    onResponse: { response in try await exchange.handle(response.messages) })
            }
        } catch let error as KernelError {
            throw error
        } catch {
            throw KernelError.waitingForEnrollment(
                node: node,
                reason: "the enrollment with the agent at \(address) failed: \(describeEnrollment(error))")
        }
        switch result {
        case .refused(let reason):
            logger.warning("refused to enroll a node", metadata: ["node": "\(node)", "reason": "\(reason)"])
            throw KernelError.waitingForEnrollment(node: node, reason: "its enrollment was refused: \(reason)")
        case .enrolled:
            logger.notice("enrolled a node by join token", metadata: ["node": "\(node)", "address": "\(address)"])
        }
    }
}

extension AgentKernel {
    /// A failed enrollment call, for messages (the usual connection's refusal of the provisional
    /// certificate is not the reason).
    func describeEnrollment(_ error: any Error) -> String {
        if let alert = enrollmentHandshakes.peerAlert {
            return "the joining agent refused the TLS handshake (alert \(TLSAlert.name(alert))): "
                + "\(ControlChannelTLS.requirement), and an agent of an older release may not speak it"
        }
        guard let error = error as? RPCError else { return "\(error)" }
        switch error.code {
        case .deadlineExceeded: return "no answer before the deadline"
        default: return "\(error.code): \(error.message)"
        }
    }
}

/// The provisional certificate a joining agent presented on the enrollment connection.
final class SeenCertificate: Sendable {
    private let der = Mutex<[UInt8]?>(nil)

    func set(_ value: [UInt8]) { der.withLock { $0 = value } }

    var value: [UInt8]? { der.withLock { $0 } }
}

/// The controller's side of one `Enroll` stream. The request side sends the nonce, then waits
/// for the outcome the response side decides once it read the claim.
struct EnrollmentExchange: Sendable {
    enum Result: Sendable {
        case enrolled
        case refused(String)
    }

    let node: String
    let issuer: any EnrollmentIssuer
    let nonce: [UInt8]
    let controllerCertificateDER: [UInt8]
    let agentCertificate: @Sendable () -> [UInt8]?
    private let outcomes: AsyncStream<EnrollmentWire.Outcome>
    private let decided: AsyncStream<EnrollmentWire.Outcome>.Continuation

    init(
        node: String, issuer: any EnrollmentIssuer, nonce: [UInt8], controllerCertificateDER: [UInt8],
        agentCertificate: @escaping @Sendable () -> [UInt8]?
    ) {
        self.node = node
        self.issuer = issuer
        self.nonce = nonce
        self.controllerCertificateDER = controllerCertificateDER
        self.agentCertificate = agentCertificate
        (outcomes, decided) = AsyncStream.makeStream(bufferingPolicy: .bufferingOldest(1))
    }

    static func der(pem: String) throws -> [UInt8] {
        try NIOSSLCertificate(bytes: Array(pem.utf8), format: .pem).toDERBytes()
    }

    /// The requests: the nonce, then the outcome; the request stream closes after it.
    func produce(_ writer: RPCWriter<Meshward_Agent_V1_EnrollRequest>) async throws {
        try await writer.write(EnrollmentWire.challenge(nonce: nonce))
        for await outcome in outcomes {
            try await writer.write(EnrollmentWire.message(outcome))
            return
        }
    }

    /// The replies: the claim, decided by the issuer, then (when issued) the acknowledgement.
    func handle(
        _ replies: RPCAsyncSequence<Meshward_Agent_V1_EnrollReply, any Error>
    ) async throws -> Result {
        defer { decided.finish() }
        var incoming = replies.makeAsyncIterator()
        guard let first = try await incoming.next() else {
            throw KernelError.waitingForEnrollment(
                node: node, reason: "the agent ended the enrollment before its claim")
        }
        let claim: EnrollmentWire.Claim
        do {
            claim = try EnrollmentWire.claim(from: first)
        } catch {
            throw KernelError.waitingForEnrollment(node: node, reason: "the agent's claim is malformed: \(error)")
        }
        guard let agentDER = agentCertificate() else {
            throw KernelError.waitingForEnrollment(
                node: node, reason: "no provisional certificate was seen in this session")
        }
        let outcome: EnrollmentWire.Outcome
        do {
            let issued = try await issuer.issue(
                node: node, tokenID: claim.tokenID, csrDER: claim.csrDER, proof: claim.proof, nonce: nonce,
                agentCertificateDER: agentDER, controllerCertificateDER: controllerCertificateDER)
            outcome = .issued(
                certificateDER: try Self.der(pem: issued.certificatePEM),
                caCertificateDER: try Self.der(pem: issued.caCertificatePEM))
        } catch {
            outcome = .refused("\(error)")
        }
        decided.yield(outcome)
        if case .refused(let reason) = outcome {
            while try await incoming.next() != nil {}
            return .refused(reason)
        }
        guard let last = try await incoming.next() else {
            throw KernelError.waitingForEnrollment(
                node: node, reason: "the agent ended the enrollment without confirming that it stored its certificate")
        }
        let stored: Bool
        do {
            stored = try EnrollmentWire.isStored(last)
        } catch {
            throw KernelError.waitingForEnrollment(
                node: node, reason: "the agent's acknowledgement is malformed: \(error)")
        }
        guard stored else {
            throw KernelError.waitingForEnrollment(node: node, reason: "the agent did not store its certificate")
        }
        while try await incoming.next() != nil {}
        return .enrolled
    }
}
