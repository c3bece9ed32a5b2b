import Foundation
import Identity
import MeshwardCore
import Testing

/// The pure parts of enrollment: the join token's format, the session-bound proof, the joining
/// host's key, provisional certificate and CSR, and the certificate the CA issues from the CSR.
@Suite("enrollment: join tokens, proofs and CSRs")
struct EnrollmentProofTests {
    static let now = Date(timeIntervalSinceReferenceDate: 800_000_000)

    @Test("a generated join token prints as mwjoin1.<id>.<secret>.<ca> and reads back to the same id, secret and CA")
    func tokenRoundTrip() throws {
        let ca = try ClusterCA.create(cluster: "shop", now: Self.now)
        let token = try JoinToken.generate(pinning: ca.certificate)
        let parsed = try JoinToken(parsing: token.encoded + "\n")
        #expect(parsed.id == token.id)
        #expect(parsed.secret == token.secret)
        #expect(parsed.caFingerprint == token.caFingerprint)
        #expect(parsed.verifier == token.verifier)
        #expect(token.caFingerprint == (try JoinToken.fingerprint(of: ca.certificate)))
        #expect(!"\(token)".contains(token.encoded.split(separator: ".")[2]))
        let other = try ClusterCA.create(cluster: "shop", now: Self.now)
        #expect(try JoinToken.fingerprint(of: other.certificate) != token.caFingerprint)
    }

    @Test(
        "a malformed join token is refused naming the part that is wrong",
        arguments: [
            (
                "mwjoin2.0011223344556677.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.\(String(repeating: "ab", count: 32))",
                "not of the form"
            ),
            (
                "mwjoin1.00112233445566.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.\(String(repeating: "ab", count: 32))",
                "its id is not 16"
            ),
            (
                "mwjoin1.00112233445566AB.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.\(String(repeating: "ab", count: 32))",
                "its id is not 16"
            ),
            (
                "mwjoin1.0011223344556677.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.\(String(repeating: "ab", count: 32))",
                "its secret is not 32 bytes"
            ),
            (
                "mwjoin1.0011223344556677.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+.\(String(repeating: "ab", count: 32))",
                "its secret is not 32 bytes"
            ),
            (
                "mwjoin1.0011223344556677.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.\(String(repeating: "ab", count: 31))",
                "its CA fingerprint is not 64"
            ),
            ("mwjoin1.0011223344556677.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "not of the form"),
        ])
    func malformedTokens(text: String, reason: String) {
        #expect(throws: JoinTokenFormatError.self) { try JoinToken(parsing: text) }
        do {
            _ = try JoinToken(parsing: text)
        } catch {
            #expect("\(error)".contains(reason), "\(error)")
            #expect(!"\(error)".contains("AAAAAAAAAAAAAAAA"), "the message repeats the secret: \(error)")
        }
    }

    /// One session's values: a token's verifier, a nonce, both certificates and the CSR.
    struct Session {
        var verifier: [UInt8]
        var nonce: [UInt8]
        var agent: [UInt8]
        var controller: [UInt8]
        var csr: [UInt8]

        var proof: [UInt8] {
            EnrollmentProof.make(
                verifier: verifier, nonce: nonce, agentCertificateDER: agent, controllerCertificateDER: controller,
                csrDER: csr)
        }

        func verifies(_ proof: [UInt8]) -> Bool {
            EnrollmentProof.verify(
                proof, verifier: verifier, nonce: nonce, agentCertificateDER: agent,
                controllerCertificateDER: controller,
                csrDER: csr)
        }
    }

    static func session(_ token: JoinToken, controller: [UInt8]) throws -> Session {
        let request = try JoinRequest(cluster: "shop", node: "web-1", addresses: [], now: now)
        return Session(
            verifier: token.verifier, nonce: EnrollmentProof.nonce(), agent: try request.provisionalCertificateDER,
            controller: controller, csr: try request.csrDER)
    }

    @Test(
        "a proof verifies with the session it was made in, and not with another verifier, nonce, agent certificate, controller certificate or CSR"
    )
    func proofBinding() throws {
        let ca = try ClusterCA.create(cluster: "shop", now: Self.now)
        let token = try JoinToken.generate(pinning: ca.certificate)
        let controller = try ca.issue(for: .controller(cluster: "shop"), now: Self.now, validity: .seconds(3600))
        let controllerDER = try controller.certificate.serializeAsPEM().derBytes
        let session = try Self.session(token, controller: controllerDER)
        let proof = session.proof
        #expect(proof.count == 32)
        #expect(session.verifies(proof))

        let otherToken = try JoinToken.generate(pinning: ca.certificate)
        let second = try Self.session(token, controller: controllerDER)
        let otherController = try ca.issue(for: .controller(cluster: "shop"), now: Self.now, validity: .seconds(3600))
        var changed: [(String, Session)] = []
        var wrongSecret = session
        wrongSecret.verifier = otherToken.verifier
        changed.append(("another token's verifier", wrongSecret))
        var otherNonce = session
        otherNonce.nonce = EnrollmentProof.nonce()
        changed.append(("another nonce", otherNonce))
        var otherAgent = session
        otherAgent.agent = second.agent
        changed.append(("another provisional certificate", otherAgent))
        var otherCA = session
        otherCA.controller = try otherController.certificate.serializeAsPEM().derBytes
        changed.append(("another controller certificate", otherCA))
        var otherCSR = session
        otherCSR.csr = second.csr
        changed.append(("another CSR", otherCSR))
        // A proof recorded in this session, presented in a second session (its own nonce and
        // provisional certificate, the same controller and token).
        changed.append(("a second session", second))
        for (name, other) in changed {
            #expect(!other.verifies(proof), "the proof verified with \(name)")
            #expect(other.verifies(other.proof), "\(name): its own proof does not verify")
        }
        var shortNonce = session
        shortNonce.nonce = Array(session.nonce.prefix(16))
        #expect(!shortNonce.verifies(shortNonce.proof), "a 16-byte nonce was accepted")
    }

    @Test(
        "the provisional certificate is self-signed with CN meshward-join and claims no spiffe identity; an issued one is not provisional"
    )
    func provisionalCertificate() throws {
        let request = try JoinRequest(cluster: "shop", node: "web-1", addresses: [], now: Self.now)
        #expect(JoinRequest.isProvisional(request.provisionalCertificate))
        #expect(PeerVerifier.identity(of: request.provisionalCertificate) == nil)
        let ca = try ClusterCA.create(cluster: "shop", now: Self.now)
        let issued = try ca.issue(
            for: .node(cluster: "shop", name: "web-1"), now: Self.now, validity: .seconds(3600))
        #expect(!JoinRequest.isProvisional(issued.certificate))
        #expect(!JoinRequest.isProvisional(ca.certificate))
        // The provisional certificate does not verify against the cluster CA.
        let verified = PeerVerifier(ca: ca.certificate, cluster: "shop").verify(
            leafDER: try request.provisionalCertificateDER, peer: "test", now: Self.now, expected: { _ in nil })
        guard case .failure(.untrusted) = verified else {
            Issue.record("a provisional certificate gave \(verified)")
            return
        }
    }

    @Test(
        "the CA issues an enrolling node's certificate for the CSR's key with the spec's addresses, not the CSR's; a CSR with a bad signature is refused"
    )
    func issuedFromCSR() throws {
        let ca = try ClusterCA.create(cluster: "shop", now: Self.now)
        let asked = [IPAddress("198.18.9.9")].compactMap { $0 }
        let spec = [IPAddress("198.18.1.10"), IPAddress("2001:db8::10")].compactMap { $0 }
        let request = try JoinRequest(cluster: "shop", node: "web-1", addresses: asked, now: Self.now)
        let certificate = try ca.issue(
            node: "web-1", csr: request.csr, addresses: spec, now: Self.now, validity: .seconds(3600))
        #expect(PeerVerifier.identity(of: certificate) == .node(cluster: "shop", name: "web-1"))
        #expect(PeerVerifier.addresses(of: certificate) == spec)
        #expect(certificate.publicKey == request.csr.publicKey)
        let verified = PeerVerifier(ca: ca.certificate, cluster: "shop").verify(
            leafDER: try certificate.serializeAsPEM().derBytes, peer: "test", now: Self.now, expected: { _ in nil })
        #expect(try verified.get() == .node(cluster: "shop", name: "web-1"))

        // The same CSR with another request's signature: its sender does not hold the key.
        let other = try JoinRequest(cluster: "shop", node: "web-1", addresses: asked, now: Self.now)
        let forged = try type(of: request.csr).init(
            version: request.csr.version, subject: request.csr.subject, publicKey: request.csr.publicKey,
            attributes: request.csr.attributes, signatureAlgorithm: request.csr.signatureAlgorithm,
            signature: other.csr.signature)
        #expect(throws: IdentityError.self) {
            _ = try ca.issue(node: "web-1", csr: forged, addresses: spec, now: Self.now, validity: .seconds(3600))
        }
    }
}
