import Agent
import Controller
import DesiredState
import Foundation
import Identity
import Logging
import MeshwardCore
import Reconciler
import Store
import Testing

/// The controller's side of enrollment, without the transport: a request is checked against
/// the Store's token and the TLS session it came in, and only a request that passes every check
/// spends the token and gets a certificate.
@Suite("enrollment: the controller's checks")
struct EnrollmentAuthorityTests {
    static let t0 = Date(timeIntervalSinceReferenceDate: 800_000_000)

    /// A Store, a spec with two agent nodes, its CA's controller certificate, and tokens.
    struct Fixture {
        let store: any ControllerStore
        let intent: FleetIntent
        let authority: EnrollmentAuthority
        let controllerDER: [UInt8]
        let ca: ClusterCA

        init() async throws {
            let store = try StateStore.inMemory(
                masterKey: try KeyMaterial.random(count: 32),
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            self.store = store
            intent = try Self.intent()
            authority = EnrollmentAuthority(store: store, intent: intent)
            let credentials = ClusterCredentials(store: store, cluster: "joining")
            ca = try await credentials.certificateAuthority(now: t0)
            let controller = try await credentials.controller(now: t0)
            controllerDER = try IssuedCredential(
                certificatePEM: controller.certificatePEM, privateKeyPEM: controller.privateKeyPEM
            ).certificate.serializeAsPEM().derBytes
        }

        /// The spec: web-1 and db-1 behind agents, sim-1 simulated, cluster `joining`.
        static func intent() throws -> FleetIntent {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-enroll-\(UUID()).yaml")
            try """
            version: 1
            cluster: joining
            nodes:
              - { name: web-1, addresses: [198.18.0.1, "2001:db8::1"], endpoint: agent }
              - { name: db-1, addresses: [198.18.0.2], endpoint: agent }
              - { name: sim-1, addresses: [198.18.0.3], endpoint: sim }
            flows:
              - { name: web-db, from: { name: web-1 }, to: { name: db-1 } }
            """.write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            return try MeshwardController.loadSpec([file.path]).intent
        }

        /// A token for `node`, stored as `agent token` stores it, valid for an hour from t0.
        func token(node: String) async throws -> JoinToken {
            let token = try JoinToken.generate(pinning: ca.certificate)
            try await store.createJoinToken(
                NewJoinToken(id: token.id, node: node, verifier: token.verifier, expiresAt: t0 + 3600), now: t0)
            return token
        }

        /// One TLS session of an agent joining as `node` with `secret`: the request it sends
        /// (proof made with `secret`) and what the controller saw.
        func session(
            node: String, tokenID: String, secret: KeyMaterial
        ) throws -> (
            EnrollmentRequest, EnrollmentSession, JoinRequest
        ) {
            let join = try JoinRequest(cluster: "joining", node: node, addresses: [], now: t0)
            let session = EnrollmentSession(
                nonce: EnrollmentProof.nonce(), agentCertificateDER: try join.provisionalCertificateDER,
                controllerCertificateDER: controllerDER)
            let proof = EnrollmentProof.make(
                verifier: JoinToken.verifier(ofSecret: secret), nonce: session.nonce,
                agentCertificateDER: session.agentCertificateDER,
                controllerCertificateDER: session.controllerCertificateDER, csrDER: try join.csrDER)
            return (EnrollmentRequest(tokenID: tokenID, csrDER: try join.csrDER, proof: proof), session, join)
        }

        /// The error `enroll` throws, or nil when it issues (recorded as an issue).
        func refusal(
            node: String, _ request: EnrollmentRequest, _ session: EnrollmentSession, now: Date
        ) async -> (any Error)? {
            do {
                let issued = try await authority.enroll(node: node, request: request, session: session, now: now)
                Issue.record("a certificate was issued: \(issued.certificatePEM.prefix(40))")
                return nil
            } catch {
                return error
            }
        }
    }

    @Test(
        "a valid request issues the node's certificate for the CSR's key with the spec's addresses and spends the token; the token a second time is refused as spent"
    )
    func enrolledOnce() async throws {
        let fixture = try await Fixture()
        let token = try await fixture.token(node: "web-1")
        let (request, session, join) = try fixture.session(node: "web-1", tokenID: token.id, secret: token.secret)
        let issued = try await fixture.authority.enroll(
            node: "web-1", request: request, session: session, now: Self.t0 + 10)
        let certificate = try IssuedCredential(certificatePEM: issued.certificatePEM, privateKeyPEM: join.privateKeyPEM)
            .certificate
        #expect(PeerVerifier.identity(of: certificate) == .node(cluster: "joining", name: "web-1"))
        #expect(PeerVerifier.addresses(of: certificate).map(\.description) == ["198.18.0.1", "2001:db8::1"])
        #expect(issued.caCertificatePEM == (try fixture.ca.certificatePEM))
        #expect(try await fixture.store.joinToken(id: token.id)?.spentAt == Self.t0 + 10)
        #expect(try await fixture.store.unspentJoinTokens().isEmpty)

        // The same token again, in a new session with a valid proof: spent.
        let (again, second, _) = try fixture.session(node: "web-1", tokenID: token.id, secret: token.secret)
        let error = await fixture.refusal(node: "web-1", again, second, now: Self.t0 + 20)
        #expect(error as? JoinTokenError == .spent(id: token.id, at: Self.t0 + 10), "\(String(describing: error))")
        #expect(try await fixture.store.joinToken(id: token.id)?.spentAt == Self.t0 + 10)
    }

    @Test(
        "an expired token, a token of another node, a wrong secret and an unknown token are each refused naming why; nothing is issued and the token stays unspent"
    )
    func refusals() async throws {
        let fixture = try await Fixture()
        let token = try await fixture.token(node: "web-1")

        let (valid, session, _) = try fixture.session(node: "web-1", tokenID: token.id, secret: token.secret)
        let expired = await fixture.refusal(node: "web-1", valid, session, now: Self.t0 + 3600)
        #expect(expired as? JoinTokenError == .expired(id: token.id, at: Self.t0 + 3600))

        let (asOther, otherSession, _) = try fixture.session(node: "db-1", tokenID: token.id, secret: token.secret)
        let wrongNode = await fixture.refusal(node: "db-1", asOther, otherSession, now: Self.t0 + 1)
        #expect(wrongNode as? JoinTokenError == .wrongNode(id: token.id, issuedFor: "web-1", presentedFor: "db-1"))

        let (wrongSecret, wrongSession, _) = try fixture.session(
            node: "web-1", tokenID: token.id, secret: try KeyMaterial.random(count: 32))
        let refused = await fixture.refusal(node: "web-1", wrongSecret, wrongSession, now: Self.t0 + 1)
        #expect(refused as? EnrollmentError == .proofRefused(node: "web-1", tokenID: token.id))
        #expect("\(refused.map { "\($0)" } ?? "")".contains("nothing was issued and the token is unspent"))

        var unknownRequest = valid
        unknownRequest.tokenID = "00000000deadbeef"
        let unknown = await fixture.refusal(node: "web-1", unknownRequest, session, now: Self.t0 + 1)
        #expect(unknown as? JoinTokenError == .unknown(id: "00000000deadbeef"))

        #expect(try await fixture.store.joinToken(id: token.id)?.spentAt == nil)
        #expect(try await fixture.store.unspentJoinTokens().map(\.id) == [token.id])
        // The token still enrolls its node when presented right.
        let issued = try await fixture.authority.enroll(
            node: "web-1", request: valid, session: session, now: Self.t0 + 2)
        #expect(!issued.certificatePEM.isEmpty)
    }

    @Test(
        "a request recorded in one TLS session and presented in a second is refused: nothing issued, the token unspent"
    )
    func replayRefused() async throws {
        let fixture = try await Fixture()
        let token = try await fixture.token(node: "web-1")
        // Recorded from the first session (say by a reader of the wire after TLS, or a relay).
        let (recorded, _, _) = try fixture.session(node: "web-1", tokenID: token.id, secret: token.secret)
        // The second session: the controller's fresh nonce, the certificate the replayer serves.
        let (_, second, _) = try fixture.session(node: "web-1", tokenID: token.id, secret: token.secret)
        let error = await fixture.refusal(node: "web-1", recorded, second, now: Self.t0 + 1)
        #expect(error as? EnrollmentError == .proofRefused(node: "web-1", tokenID: token.id))
        // The same provisional certificate but a new nonce is refused too.
        let (original, firstSession, _) = try fixture.session(node: "web-1", tokenID: token.id, secret: token.secret)
        var renonced = firstSession
        renonced.nonce = EnrollmentProof.nonce()
        let again = await fixture.refusal(node: "web-1", original, renonced, now: Self.t0 + 1)
        #expect(again as? EnrollmentError == .proofRefused(node: "web-1", tokenID: token.id))
        #expect(try await fixture.store.joinToken(id: token.id)?.spentAt == nil)
    }

    @Test(
        "a node whose endpoint is not an agent, or that the spec lacks, is refused naming it; the token stays unspent")
    func notAnAgent() async throws {
        let fixture = try await Fixture()
        let token = try await fixture.token(node: "web-1")
        let (request, session, _) = try fixture.session(node: "web-1", tokenID: token.id, secret: token.secret)
        let missing = await fixture.refusal(node: "cache-9", request, session, now: Self.t0 + 1)
        #expect("\(missing.map { "\($0)" } ?? "")".contains("cache-9"))
        let simulated = await fixture.refusal(node: "sim-1", request, session, now: Self.t0 + 1)
        #expect(simulated as? EnrollmentError == .notAnAgent(node: "sim-1", endpoint: "sim"))
        #expect(try await fixture.store.joinToken(id: token.id)?.spentAt == nil)
    }
}
