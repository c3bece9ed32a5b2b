import Agent
import AgentTestSupport
import DesiredState
import Foundation
import Identity
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import Store
import Synchronization
import Testing

@testable import Controller
@testable import Reconciler

/// Enrollment over the agent connection: a joining agent (provisional certificate, pinned CA)
/// and the controller's `AgentKernel` with the Store's `EnrollmentAuthority`, over real gRPC and
/// TLS on loopback, the agent then serving a simulated kernel.
@Suite("enrollment over TLS")
struct EnrollmentTransportTests {
    /// How long an observation that enrolls may take. Alone, an enrollment and its observation
    /// take half a second; amid the whole suite on two cores they took 21–27 s, and once over
    /// 30 s (the in-process agent waits for a core while the suite's long tests hold both). A
    /// refusal answers at once whatever the deadline.
    static let observeDeadline: Duration = .seconds(120)

    static let logger: Logger = {
        guard ProcessInfo.processInfo.environment["MESHWARD_TEST_LOG"] != nil else {
            return Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        }
        var logger = Logger(label: "test", factory: { label in StreamLogHandler.standardError(label: label) })
        logger.logLevel = .trace
        return logger
    }()

    /// A Store, the spec of `EnrollmentAuthorityTests`, the controller's credentials and tokens.
    struct Fixture {
        let store: any ControllerStore
        let intent: FleetIntent
        let authority: EnrollmentAuthority
        let controller: AgentCredentials
        let ca: ClusterCA
        let base: String
        let now = Date()

        init() async throws {
            let store = try StateStore.inMemory(masterKey: try KeyMaterial.random(count: 32), logger: logger)
            self.store = store
            intent = try EnrollmentAuthorityTests.Fixture.intent()
            authority = EnrollmentAuthority(store: store, intent: intent)
            let credentials = ClusterCredentials(store: store, cluster: "joining")
            ca = try await credentials.certificateAuthority(now: now)
            controller = try await credentials.controller(now: now)
            base = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-join-\(UUID())").path
        }

        /// A token for `node`, stored as `agent token` stores it, valid for an hour.
        func token(node: String) async throws -> JoinToken {
            let token = try JoinToken.generate(pinning: ca.certificate)
            try await store.createJoinToken(
                NewJoinToken(id: token.id, node: node, verifier: token.verifier, expiresAt: now + 3600), now: now)
            return token
        }

        /// A joining agent for web-1 with `token`, its token in a 0600 file of its own.
        func joiningAgent(
            _ token: JoinToken, name: String = "web-1"
        ) async throws -> (InProcessJoiningAgent, AgentDirectory, String) {
            let directory = AgentDirectory(path: base + "/\(name)-\(UUID())")
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            let tokenFile = base + "/\(name)-\(UUID()).token"
            #expect(
                FileManager.default.createFile(
                    atPath: tokenFile, contents: Data((token.encoded + "\n").utf8),
                    attributes: [.posixPermissions: 0o600]))
            let fleet = SimulatedFleet()
            fleet.withState { $0.addNode("web-1", addresses: [IPAddress("198.18.0.1")!]) }
            let agent = try await InProcessJoiningAgent.start(
                token: token, cluster: "joining", node: "web-1", connector: SimulatedConnector(fleet: fleet),
                directory: directory, tokenFile: tokenFile, logger: EnrollmentTransportTests.logger)
            return (agent, directory, tokenFile)
        }

        /// Observes web-1 through `agent` as a pass does: the controller enrolls it with
        /// `issuer` (the Store's authority at `at` unless told) and observes it.
        func observe(
            _ agent: InProcessJoiningAgent, credentials: AgentCredentials? = nil, issuer: (any EnrollmentIssuer)? = nil,
            at: Date? = nil
        ) async -> Result<NodeObservation, any Error> {
            let when = at ?? now
            let kernel: AgentKernel
            do {
                kernel = try AgentKernel(
                    node: "web-1", host: "127.0.0.1", port: UInt16(agent.port), reqid: .meshwardDefault,
                    credentials: credentials ?? controller, cluster: "joining", epoch: { 1 },
                    enrollment: issuer ?? authority.issuer(now: { when }), executor: ThreadTaskExecutor.shared,
                    logger: logger)
            } catch {
                return .failure(error)
            }
            let result: Result<NodeObservation, any Error>
            do {
                result = .success(try await kernel.observe(deadline: .now + EnrollmentTransportTests.observeDeadline))
            } catch {
                result = .failure(error)
            }
            await kernel.close()
            return result
        }

        /// The reason of a `waitingForEnrollment` failure; nil (and an issue) for anything else.
        func waitingReason(_ result: Result<NodeObservation, any Error>) -> String? {
            guard case .failure(let error) = result,
                case KernelError.waitingForEnrollment(let node, let reason) = error,
                node == "web-1"
            else {
                Issue.record("not waiting for enrollment: \(result)")
                return nil
            }
            return reason
        }

        func remove() { try? FileManager.default.removeItem(atPath: base) }

        /// Expects the refusal to have left the Store as it was: no certificate issued to any
        /// node, and each of `tokens` unspent.
        func expectNothingIssued(
            unspent tokens: [JoinToken], sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            #expect(try await store.issuedCertificates(node: nil).isEmpty, sourceLocation: sourceLocation)
            for token in tokens {
                #expect(
                    try await store.joinToken(id: token.id)?.spentAt == nil, "token \(token.id)",
                    sourceLocation: sourceLocation)
            }
        }
    }

    @Test(
        "a host with a join token is enrolled over TLS and observed in the same call with its issued certificate: token spent, serial recorded, directory 0700 with 0600 files, token file deleted"
    )
    func enrolls() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        let token = try await fixture.token(node: "web-1")
        let (agent, directory, tokenFile) = try await fixture.joiningAgent(token)
        let observed = await fixture.observe(agent)
        await agent.stop()
        let observation = try observed.get()
        let expiry = try #require(observation.agentCertificateExpiry)
        #expect(abs(expiry.timeIntervalSince(fixture.now) - fixture.intent.certificateLifetime.timeInterval) < 120)
        #expect(try await fixture.store.joinToken(id: token.id)?.spentAt == fixture.now)
        let issued = try await fixture.store.issuedCertificates(node: "web-1")
        #expect(issued.count == 1)
        #expect(abs((issued.first?.notValidAfter ?? .distantPast).timeIntervalSince(expiry)) < 1)
        #expect(!FileManager.default.fileExists(atPath: tokenFile))
        #expect(try Self.mode(directory.path) == 0o700)
        for file in [directory.certificatePath, directory.privateKeyPath, directory.caCertificatePath] {
            #expect(try Self.mode(file) == 0o600, "\(file)")
        }
        let written = try directory.readCredentials()
        #expect(written.caCertificatePEM == (try fixture.ca.certificatePEM))
        #expect(written.privateKeyPEM == agent.joining.request.privateKeyPEM)
        #expect(agent.server?.node == "web-1")
    }

    @Test(
        "the controller and a joining agent negotiate TLS 1.3 with X25519MLKEM768 on the enrollment connection and again on the enrolled agent's, as both ends read it off the ServerHello"
    )
    func enrollmentNegotiatesHybrid() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        let (agent, _, _) = try await fixture.joiningAgent(try await fixture.token(node: "web-1"))
        let kernel = try AgentKernel(
            node: "web-1", host: "127.0.0.1", port: UInt16(agent.port), reqid: .meshwardDefault,
            credentials: fixture.controller, cluster: "joining", epoch: { 1 },
            enrollment: fixture.authority.issuer(now: { fixture.now }), executor: ThreadTaskExecutor.shared,
            logger: Self.logger)
        _ = try await kernel.observe(deadline: .now + Self.observeDeadline)
        let agreed = TLSNegotiation(version: 0x0304, group: 0x11EC)
        #expect(kernel.enrollmentNegotiatedTLS == agreed)
        #expect(agent.joining.negotiatedTLS == agreed)
        #expect(kernel.negotiatedTLS == agreed)
        #expect(agent.server?.negotiatedTLS == agreed)
        await kernel.close()
        await agent.stop()
    }

    @Test("a token used twice is refused the second time as spent, and nothing more is issued")
    func spentTwice() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        let token = try await fixture.token(node: "web-1")
        let (first, _, _) = try await fixture.joiningAgent(token)
        _ = try await fixture.observe(first).get()
        await first.stop()
        let (second, directory, tokenFile) = try await fixture.joiningAgent(token)
        let reason = fixture.waitingReason(await fixture.observe(second))
        let stopped = await second.stop()
        #expect(reason?.contains("join token \(token.id) was spent at") == true, "\(reason ?? "")")
        #expect(second.joining.refusedEnrollments.count == 1)
        #expect(stopped as? AgentError == .notEnrolled(node: "web-1"))
        #expect(try await fixture.store.issuedCertificates(node: "web-1").count == 1)
        #expect(FileManager.default.fileExists(atPath: tokenFile))
        #expect(try !directory.hasCredentials)
    }

    @Test(
        "an expired token, a token of another node and a wrong secret are each refused naming why; nothing is issued, the token stays unspent and the host keeps waiting"
    )
    func refusals() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        let token = try await fixture.token(node: "web-1")
        let other = try await fixture.token(node: "db-1")
        // The same id with another secret: what a host with a mistyped token sends.
        var fields = token.encoded.split(separator: ".").map(String.init)
        fields[2] = String(try JoinToken.generate(pinning: fixture.ca.certificate).encoded.split(separator: ".")[2])
        let wrongSecret = try JoinToken(parsing: fields.joined(separator: "."))
        let cases: [(JoinToken, Date, String)] = [
            (token, fixture.now + 3601, "join token \(token.id) expired at"),
            (other, fixture.now, "join token \(other.id) was issued for node 'db-1', not 'web-1'"),
            (wrongSecret, fixture.now, "presented join token \(token.id) with a proof that does not verify"),
        ]
        for (presented, at, expected) in cases {
            let (agent, directory, tokenFile) = try await fixture.joiningAgent(presented)
            let reason = fixture.waitingReason(await fixture.observe(agent, at: at))
            await agent.stop()
            #expect(reason?.contains(expected) == true, "\(reason ?? "") lacks \(expected)")
            #expect(agent.joining.refusedEnrollments.count == 1)
            #expect(try !directory.hasCredentials)
            #expect(FileManager.default.fileExists(atPath: tokenFile))
        }
        try await fixture.expectNothingIssued(unspent: [token, other])
    }

    @Test(
        "a controller whose chain ends at another CA (a man in the middle) is refused in the handshake naming both fingerprints; its issuer is never asked"
    )
    func manInTheMiddle() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        let token = try await fixture.token(node: "web-1")
        let impostor = try ClusterCA.create(cluster: "joining", now: fixture.now)
        let credentials = try AgentCredentials(
            ca: impostor,
            issued: impostor.issue(for: .controller(cluster: "joining"), now: fixture.now, validity: .seconds(3600)))
        let asked = RecordingIssuer(passingTo: fixture.authority.issuer(now: { fixture.now }))
        let (agent, directory, _) = try await fixture.joiningAgent(token)
        let reason = fixture.waitingReason(await fixture.observe(agent, credentials: credentials, issuer: asked))
        await agent.stop()
        #expect(reason != nil)
        let pinned = token.caFingerprintHex
        let presented = JoinToken.hex(try JoinToken.fingerprint(of: impostor.certificate))
        let refusals = agent.joining.refusedClients.map(\.description)
        #expect(
            refusals.contains { $0.contains(presented) && $0.contains(pinned) && $0.contains("not") },
            "\(refusals)")
        #expect(asked.claims.isEmpty)
        #expect(try !directory.hasCredentials)
        try await fixture.expectNothingIssued(unspent: [token])
    }

    @Test(
        "a claim recorded in one TLS session and replayed in another is refused: its proof does not verify with the new session's nonce; nothing is issued and the token stays unspent"
    )
    func replayedProof() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        let token = try await fixture.token(node: "web-1")
        let (agent, directory, _) = try await fixture.joiningAgent(token)
        // Session 1: the claim is recorded and nothing is issued.
        let recorder = RecordingIssuer(passingTo: nil)
        _ = fixture.waitingReason(await fixture.observe(agent, issuer: recorder))
        let recorded = try #require(recorder.claims.first)
        // Session 2: the recorded claim in place of the agent's own.
        let replayer = RecordingIssuer(passingTo: fixture.authority.issuer(now: { fixture.now }), replaying: recorded)
        let reason = fixture.waitingReason(await fixture.observe(agent, issuer: replayer))
        await agent.stop()
        #expect(
            reason?.contains("presented join token \(token.id) with a proof that does not verify") == true,
            "\(reason ?? "")")
        #expect(replayer.claims.count == 1 && replayer.claims.first?.proof != recorded.proof)
        #expect(try !directory.hasCredentials)
        try await fixture.expectNothingIssued(unspent: [token])
    }

    @Test(
        "a pass's channels that need a node waiting for enrollment are blocked for that reason, by the observation's error, not its words"
    )
    func blockedWhileWaiting() async throws {
        let fixture = try await Fixture()
        let input = PlanningInput(
            intent: fixture.intent, channels: [:], observations: [:],
            unreachable: [
                "web-1": "\(KernelError.waitingForEnrollment(node: "web-1", reason: "its enrollment was refused: x"))",
                "db-1": "node db-1 is unreachable: the agent is waiting for enrollment, it says",
            ], waitingForEnrollment: ["web-1"], knownNodes: ["web-1", "db-1"], reqid: .meshwardDefault,
            now: fixture.now)
        let web = input.blockReason(needing: "web-1")
        #expect(
            web
                == .waitingForEnrollment(
                    node: "web-1", message: "node web-1 is waiting for enrollment: its enrollment was refused: x"))
        #expect(web.description == "node web-1 is waiting for enrollment: its enrollment was refused: x")
        let db = input.blockReason(needing: "db-1")
        #expect(
            db
                == .didNotAnswer(
                    node: "db-1", reason: "node db-1 is unreachable: the agent is waiting for enrollment, it says"))
        #expect(
            db.description
                == "node db-1 did not answer: node db-1 is unreachable: the agent is waiting for enrollment, it says")
    }

    static func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }
}

/// An issuer that records each claim (and the session's nonce), then passes it on (with
/// `replaying` in place of the claim, when given) or refuses.
final class RecordingIssuer: EnrollmentIssuer {
    struct Claim: Sendable {
        var tokenID: String
        var csrDER: [UInt8]
        var proof: [UInt8]
    }

    let next: (any EnrollmentIssuer)?
    let replaying: Claim?
    private let recorded = Mutex<[Claim]>([])

    init(passingTo next: (any EnrollmentIssuer)?, replaying: Claim? = nil) {
        self.next = next
        self.replaying = replaying
    }

    var claims: [Claim] { recorded.withLock { $0 } }

    func issue(
        node: String, tokenID: String, csrDER: [UInt8], proof: [UInt8], nonce: [UInt8],
        agentCertificateDER: [UInt8], controllerCertificateDER: [UInt8]
    ) async throws -> (certificatePEM: String, caCertificatePEM: String) {
        recorded.withLock { $0.append(Claim(tokenID: tokenID, csrDER: csrDER, proof: proof)) }
        guard let next else { throw RecordingRefusal() }
        let claim = replaying ?? Claim(tokenID: tokenID, csrDER: csrDER, proof: proof)
        return try await next.issue(
            node: node, tokenID: claim.tokenID, csrDER: claim.csrDER, proof: claim.proof, nonce: nonce,
            agentCertificateDER: agentCertificateDER, controllerCertificateDER: controllerCertificateDER)
    }
}

struct RecordingRefusal: Error, CustomStringConvertible {
    var description: String { "the test's recorder issues nothing" }
}
