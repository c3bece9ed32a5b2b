import Agent
import AgentTestSupport
import Foundation
import Identity
import Kernel
import KernelSimulator
import MeshwardCore
import Testing

@Suite("the agent over gRPC with mutual TLS")
struct AgentTransportTests {
    @Test(
        "an SA applied through the agent reaches the kernel and is observed back by fingerprint only, with the boot ID")
    func roundTrip() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(nodes: ["a"], connector: SimulatedConnector(fleet: fleet))
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        let key = try AgentFixtures.key()
        let results = try await kernel.apply([.addSA(AgentFixtures.association(spi: 0x1000, key: key))])
        #expect(results.map(\.outcome) == [.applied])
        let observation = try await kernel.observe()
        let sa = try #require(observation.securityAssociations.first)
        #expect(sa.spi == SPI(0x1000))
        #expect(sa.key.material == nil, "an observation carries no key bytes")
        #expect(sa.key.fingerprint == key.fingerprint)
        #expect(observation.bootID == HostFacts.bootID)
        #expect(fleet.state.nodes["a"]?.securityAssociations.count == 1)
    }

    @Test("a kernel refusal comes back as that operation's failure, with its errno")
    func refusal() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(nodes: ["a"], connector: SimulatedConnector(fleet: fleet))
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        let sa = AgentFixtures.association(spi: 0x1000, key: try AgentFixtures.key())
        let results = try await kernel.apply([.addSA(sa), .addSA(sa)])
        #expect(results.count == 2)
        #expect(results[0].outcome == .applied)
        guard case .failed(let errno, _) = results[1].outcome else {
            Issue.record("the duplicate SA was \(results[1].outcome)")
            return
        }
        #expect(errno == EEXIST)
    }

    @Test("the controller refuses an agent whose certificate names another node, naming both")
    func wrongNode() async throws {
        let fleet = AgentFixtures.fleet()
        let ca = try ClusterCA.create(cluster: "test", now: Date())
        let impostor = try AgentCredentials(
            ca: ca, issued: ca.issue(for: .node(cluster: "test", name: "b"), now: Date(), validity: .seconds(3600)))
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), ca: ca, credentials: ["a": impostor])
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        let message = await AgentFixtures.errorText { _ = try await kernel.observe() }
        #expect(message.contains("expected node a (spiffe://test/node/a)"), "\(message)")
        #expect(message.contains("the certificate that answered is spiffe://test/node/b"), "\(message)")
    }

    @Test("the agent refuses a client whose certificate is a node's, not a controller's")
    func clientNotController() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(nodes: ["a"], connector: SimulatedConnector(fleet: fleet))
        defer { Task { await agents.stop() } }
        let nodeCertificate = try AgentCredentials(
            ca: agents.ca,
            issued: agents.ca.issue(for: .node(cluster: "test", name: "b"), now: Date(), validity: .seconds(3600)))
        let kernel = try await agents.kernel("a", credentials: nodeCertificate)
        _ = await AgentFixtures.errorText { _ = try await kernel.observe() }
        let refusals = try #require(agents.servers["a"]).refusedClients.map(\.description)
        #expect(
            refusals.contains {
                $0.contains("expected spiffe://test/controller") && $0.contains("spiffe://test/node/b")
            },
            "\(refusals)")
        #expect(fleet.state.nodes["a"]?.securityAssociations.isEmpty == true)
    }

    @Test("a controller certificate of another CA is refused by the agent, and its batch never applied")
    func otherCA() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(nodes: ["a"], connector: SimulatedConnector(fleet: fleet))
        defer { Task { await agents.stop() } }
        let foreign = try ClusterCA.create(cluster: "test", now: Date())
        // It trusts the real CA (so the agent's own certificate passes) but presents one of another CA.
        let issued = try foreign.issue(for: .controller(cluster: "test"), now: Date(), validity: .seconds(3600))
        let outsider = AgentCredentials(
            caCertificatePEM: try agents.ca.certificatePEM, certificatePEM: try issued.certificatePEM,
            privateKeyPEM: issued.privateKeyPEM)
        let kernel = try await agents.kernel("a", credentials: outsider)
        // The handshake failed on the agent's side: the controller cannot tell whether the batch
        // arrived, so it reports it indeterminate, never applied.
        let results = try await kernel.apply([
            .addSA(AgentFixtures.association(spi: 0x1000, key: try AgentFixtures.key()))
        ])
        #expect(results.allSatisfy { if case .indeterminate = $0.outcome { true } else { false } }, "\(results)")
        let refusals = try #require(agents.servers["a"]).refusedClients.map(\.description)
        #expect(refusals.contains { $0.contains("not issued by this cluster's CA") }, "\(refusals)")
        #expect(fleet.state.nodes["a"]?.securityAssociations.isEmpty == true)
    }

    @Test("an expired agent certificate is refused by the controller with a message that says it expired")
    func expiredAgent() async throws {
        let fleet = AgentFixtures.fleet()
        let ca = try ClusterCA.create(cluster: "test", now: Date().addingTimeInterval(-7200))
        let key = try ca.issue(for: .node(cluster: "test", name: "a"), now: Date(), validity: .seconds(60))
        let expired = try ca.issueCertificate(
            for: .node(cluster: "test", name: "a"), publicKey: key.certificate.publicKey, addresses: [],
            notValidBefore: Date().addingTimeInterval(-7200), notValidAfter: Date().addingTimeInterval(-3600))
        let credentials = AgentCredentials(
            caCertificatePEM: try ca.certificatePEM, certificatePEM: try expired.serializeAsPEM().pemString,
            privateKeyPEM: key.privateKeyPEM)
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), ca: ca, credentials: ["a": credentials])
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        let message = await AgentFixtures.errorText { _ = try await kernel.observe() }
        #expect(message.contains("spiffe://test/node/a") && message.contains("expired at"), "\(message)")
    }

    @Test("a controller certificate that is not yet valid is refused by the agent with a message that says so")
    func notYetValidController() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(nodes: ["a"], connector: SimulatedConnector(fleet: fleet))
        defer { Task { await agents.stop() } }
        let key = try agents.ca.issue(for: .controller(cluster: "test"), now: Date(), validity: .seconds(60))
        let future = try agents.ca.issueCertificate(
            for: .controller(cluster: "test"), publicKey: key.certificate.publicKey, addresses: [],
            notValidBefore: Date().addingTimeInterval(3600), notValidAfter: Date().addingTimeInterval(7200))
        let credentials = AgentCredentials(
            caCertificatePEM: try agents.ca.certificatePEM, certificatePEM: try future.serializeAsPEM().pemString,
            privateKeyPEM: key.privateKeyPEM)
        let kernel = try await agents.kernel("a", credentials: credentials)
        _ = await AgentFixtures.errorText { _ = try await kernel.observe() }
        let refusals = try #require(agents.servers["a"]).refusedClients.map(\.description)
        #expect(refusals.contains { $0.contains("is not yet valid: valid from") }, "\(refusals)")
    }

    @Test("a hung agent costs one deadline: observe throws and apply is indeterminate once it passes")
    func hungAgent() async throws {
        let agents = try await InProcessAgents.start(nodes: ["a"], connector: HungConnector())
        defer { Task { await agents.stop() } }
        let kernel = try await agents.kernel("a")
        // The hung kernel sleeps for an hour. The timing runs on the agents' own thread, so a
        // shared pool that other tests block cannot stretch what is measured.
        let elapsed = try await withTaskExecutorPreference(agents.executor) {
            let clock = ContinuousClock()
            let observeStart = clock.now
            let message = await AgentFixtures.errorText {
                _ = try await kernel.observe(deadline: .now + .seconds(1))
            }
            let observed = clock.now - observeStart
            let operation = KernelOperation.addSA(
                AgentFixtures.association(spi: 0x1000, key: try AgentFixtures.key()))
            let applyStart = clock.now
            let results = try await kernel.apply([operation], deadline: .now + .seconds(1))
            return (observed, message, clock.now - applyStart, results)
        }
        #expect(elapsed.0 < .seconds(10), "observe waited \(elapsed.0)")
        #expect(elapsed.1.contains("unreachable") && elapsed.1.contains("deadline"), "\(elapsed.1)")
        #expect(elapsed.2 < .seconds(10), "apply waited \(elapsed.2)")
        guard case .indeterminate(let reason) = elapsed.3.first?.outcome else {
            Issue.record("a lost reply was \(String(describing: elapsed.3.first?.outcome))")
            return
        }
        #expect(reason.contains("did not answer") && reason.contains("the next observation decides"), "\(reason)")
    }

    @Test("an agent that is not running makes the node unreachable, saying where it was dialled")
    func agentDown() async throws {
        let fleet = AgentFixtures.fleet()
        let agents = try await InProcessAgents.start(nodes: ["a"], connector: SimulatedConnector(fleet: fleet))
        let kernel = try await agents.kernel("a")
        let port = try #require(agents.ports["a"])
        await agents.stop()
        let message = await AgentFixtures.errorText { _ = try await kernel.observe(deadline: .now + .seconds(5)) }
        #expect(message.contains("node a is unreachable: agent at 127.0.0.1:\(port)"), "\(message)")
    }
}
