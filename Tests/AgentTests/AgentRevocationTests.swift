import Agent
import AgentTestSupport
import Foundation
import Identity
import Kernel
import KernelSimulator
import MeshwardCore
import Synchronization
import Testing

@Suite("revoked agent certificates")
struct AgentRevocationTests {
    static let revokedAt = Date(timeIntervalSince1970: 1_800_000_000)

    /// Agents `a` and `b`, `a` with a certificate whose serial the test knows.
    static func agents(fleet: SimulatedFleet) async throws -> (InProcessAgents, serial: String) {
        let ca = try ClusterCA.create(cluster: "test", now: Date())
        let issued = try ca.issue(for: .node(cluster: "test", name: "a"), now: Date(), validity: .seconds(3600))
        let agents = try await InProcessAgents.start(
            nodes: ["a", "b"], connector: SimulatedConnector(fleet: fleet), ca: ca,
            credentials: ["a": try AgentCredentials(ca: ca, issued: issued)])
        return (agents, issued.serial)
    }

    @Test(
        "the controller refuses an agent whose certificate serial is revoked, naming serial, node, time and reason; an unrevoked agent still answers"
    )
    func revokedAgentRefused() async throws {
        let fleet = AgentFixtures.fleet()
        let (agents, serial) = try await Self.agents(fleet: fleet)
        defer { Task { await agents.stop() } }
        let list = RevocationList(entries: [
            serial: .init(node: "a", revokedAt: Self.revokedAt, reason: "host decommissioned")
        ])
        let connector = agents.connector(revocations: { list })
        let a = try await connector.connect(
            node: "a", endpoint: try #require(agents.endpoints["a"]), reqid: .meshwardDefault)
        let message = await AgentFixtures.errorText { _ = try await a.observe() }
        #expect(
            message.contains(
                "certificate serial \(serial) of node a was revoked at 2027-01-15T08:00:00Z (host decommissioned)"),
            "\(message)")
        let b = try await connector.connect(
            node: "b", endpoint: try #require(agents.endpoints["b"]), reqid: .meshwardDefault)
        _ = try await b.observe()
    }

    @Test(
        "the revocation list is read at every connection: one made after the revocation is refused, one made before answered"
    )
    func listReadAtEveryConnection() async throws {
        let fleet = AgentFixtures.fleet()
        let (agents, serial) = try await Self.agents(fleet: fleet)
        defer { Task { await agents.stop() } }
        let list = Mutex(RevocationList.empty)
        let connector = agents.connector(revocations: { list.withLock { $0 } })
        let endpoint = try #require(agents.endpoints["a"])
        let before = try await connector.connect(node: "a", endpoint: endpoint, reqid: .meshwardDefault)
        _ = try await before.observe()
        list.withLock {
            $0.entries[serial] = .init(node: "a", revokedAt: Self.revokedAt, reason: "key leaked")
        }
        let after = try await connector.connect(node: "a", endpoint: endpoint, reqid: .meshwardDefault)
        let message = await AgentFixtures.errorText { _ = try await after.observe() }
        #expect(message.contains("certificate serial \(serial) of node a was revoked at"), "\(message)")
        #expect(message.contains("(key leaked)"), "\(message)")
    }

    @Test("the verifier refuses a revoked serial before anything else about the certificate is accepted")
    func verifierRefusesRevokedSerial() throws {
        let now = Date()
        let ca = try ClusterCA.create(cluster: "shop", now: now)
        let issued = try ca.issue(for: .node(cluster: "shop", name: "web-1"), now: now, validity: .seconds(3600))
        let der = try issued.certificate.serializeAsPEM().derBytes
        let revoked = PeerVerifier(
            ca: ca.certificate, cluster: "shop",
            revocations: RevocationList(entries: [
                issued.serial: .init(node: "web-1", revokedAt: Self.revokedAt, reason: "removed from the spec")
            ])
        ).verify(leafDER: der, peer: "test", now: now, expected: { _ in nil })
        #expect(
            revoked
                == .failure(
                    .revoked(
                        serial: issued.serial, node: "web-1", revokedAt: "2027-01-15T08:00:00Z",
                        reason: "removed from the spec")))
        let other = PeerVerifier(
            ca: ca.certificate, cluster: "shop",
            revocations: RevocationList(entries: [
                "01:02:03": .init(node: "web-1", revokedAt: Self.revokedAt, reason: "an older certificate")
            ])
        ).verify(leafDER: der, peer: "test", now: now, expected: { _ in nil })
        #expect(try other.get() == .node(cluster: "shop", name: "web-1"))
    }
}
