import Agent
import DesiredState
import Foundation
import Identity
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Store
import Testing

@testable import Controller
@testable import Reconciler
@testable import ReconcilerTestSupport

/// Agent certificate renewal through `apply`, on an injected clock: two nodes behind in-process
/// agents (real gRPC and mutual TLS on loopback, simulated kernels), their directories written
/// by `agent credentials` from the Store's CA, the agents and the controller on the same clock.
@Suite("Agent certificate renewal through apply")
struct AgentCertificateRenewalTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    final class Fixture: Sendable {
        let base: URL
        let clock = ManualClock()
        let controller: MeshwardController
        let fleet = SimulatedFleet()
        let servers: [String: AgentServer]
        let directories: [String: AgentDirectory]
        let tasks: [Task<Void, Never>]
        let intent: FleetIntent

        static let spec = FleetSpec(
            nodes: [FleetSpec.node(1, tier: "web", ipv6: false), FleetSpec.node(2, tier: "app", ipv6: false)],
            flows: [.init(name: "web-app", from: "n1", to: "n2", ports: ["tcp/8080"], cipher: nil)])

        init() async throws {
            base = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-renewal-\(UUID())")
            try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
            controller = MeshwardController(
                stateDirectory: base.appendingPathComponent("state").path, logger: AgentCertificateRenewalTests.logger,
                clock: clock)
            // Credentials do not depend on the port; the spec that names the ports comes after.
            var placeholder = Self.spec
            placeholder.endpoints = ["n1": "agent:127.0.0.1:1", "n2": "agent:127.0.0.1:2"]
            let draft = try placeholder.compile()
            var servers: [String: AgentServer] = [:]
            var directories: [String: AgentDirectory] = [:]
            var tasks: [Task<Void, Never>] = []
            var endpoints: [String: String] = [:]
            let clock = self.clock
            for node in draft.nodes {
                fleet.withState { $0.addNode(node.name, addresses: node.addresses) }
                let directory = AgentDirectory(path: base.appendingPathComponent("agent-\(node.name)").path)
                let credentials = try await controller.writeAgentCredentials(draft, node: node.name, to: directory)
                let server = try AgentServer(
                    credentials: credentials, host: "127.0.0.1", port: 0, connector: SimulatedConnector(fleet: fleet),
                    endpoint: .sim, directory: directory, now: { clock.now() },
                    logger: AgentCertificateRenewalTests.logger)
                tasks.append(Task { try? await server.run() })
                endpoints[node.name] = "agent:127.0.0.1:\(try await server.listeningPort())"
                servers[node.name] = server
                directories[node.name] = directory
            }
            self.servers = servers
            self.directories = directories
            self.tasks = tasks
            var spec = Self.spec
            spec.endpoints = endpoints
            intent = try spec.compile()
        }

        func apply() async throws -> ApplyDocument {
            try await controller.apply(intent, source: "fleet.yaml", waitForDrain: true)
        }

        func issuedCount(_ node: String) async throws -> Int {
            let store: any ControllerStore = try StateStore.open(
                directory: base.appendingPathComponent("state").path, logger: AgentCertificateRenewalTests.logger)
            return try await store.issuedCertificates(node: node).count
        }

        /// When the certificate in `node`'s agent directory expires.
        func writtenExpiry(_ node: String) throws -> Date {
            let credentials = try #require(directories[node]).readCredentials()
            let issued = try IssuedCredential(
                certificatePEM: credentials.certificatePEM, privateKeyPEM: credentials.privateKeyPEM)
            #expect(issued.keyMatches, "\(node)'s key and certificate belong together")
            return issued.notValidAfter
        }

        func stop() async {
            for server in servers.values { server.shutdown() }
            for task in tasks { await task.value }
            try? FileManager.default.removeItem(at: base)
        }
    }

    @Test(
        "apply renews each agent's certificate once half its life has passed on the injected clock, not before: a new key and certificate in the agent's directory, recorded in the Store, served on the same port, the fleet still converged, and status shows the new expiry live and, with the agent down, as recorded"
    )
    func renewsAtHalfLife() async throws {
        let fixture = try await Fixture()
        let lifetime = fixture.intent.certificateLifetime.timeInterval
        #expect(try await fixture.apply().outcome == .converged)
        let first = try fixture.writtenExpiry("n1")
        #expect(try await fixture.issuedCount("n1") == 1)

        // An hour before half its life: kept.
        fixture.clock.advance(by: lifetime / 2 - 3_600)
        #expect(try await fixture.apply().outcome == .converged)
        #expect(try fixture.writtenExpiry("n1") == first)
        #expect(try await fixture.issuedCount("n1") == 1)

        // An hour after: renewed, for the spec's lifetime from now, with a new key.
        fixture.clock.advance(by: 7_200)
        let keyBefore = try #require(fixture.directories["n2"]).readCredentials().privateKeyPEM
        #expect(try await fixture.apply().outcome == .converged)
        for node in ["n1", "n2"] {
            let renewed = try fixture.writtenExpiry(node)
            #expect(abs(renewed.timeIntervalSince(fixture.clock.now()) - lifetime) < 120, "\(node)")
            #expect(try await fixture.issuedCount(node) == 2, "\(node)")
            #expect(fixture.servers[node]?.certificateValidity.upperBound == renewed, "\(node)")
        }
        #expect(try #require(fixture.directories["n2"]).readCredentials().privateKeyPEM != keyBefore)

        // The next connection sees the renewed certificate; nothing is renewed again.
        let status = try await fixture.controller.status()
        for node in status.nodes {
            #expect(node.reachable, "\(node.name): \(node.error ?? "")")
            let expires = try #require(node.agent?.certificateExpires)
            let written = try fixture.writtenExpiry(node.name)
            #expect(abs(expires.timeIntervalSince(written)) < 1, "\(node.name): served \(expires), written \(written)")
        }
        #expect(!status.warnings.contains { $0.contains("certificate") }, "\(status.warnings)")
        #expect(try await fixture.apply().outcome == .converged)
        #expect(try await fixture.issuedCount("n1") == 2)

        // The Store recorded the renewed expiry: status shows it while the agent is down.
        try #require(fixture.servers["n1"]).shutdown()
        let down = try await fixture.controller.status()
        let n1 = try #require(down.nodes.first { $0.name == "n1" })
        #expect(!n1.reachable)
        #expect(n1.agent?.live == false)
        let recorded = try #require(n1.agent?.certificateExpires)
        #expect(abs(recorded.timeIntervalSince(try fixture.writtenExpiry("n1"))) < 1)
        await fixture.stop()
    }

    @Test(
        "an agent certificate no apply renewed (none ran after half its life) is warned of by status within a day of its expiry, and renewed by the next apply"
    )
    func unreachableThenRenewed() async throws {
        let fixture = try await Fixture()
        let lifetime = fixture.intent.certificateLifetime.timeInterval
        #expect(try await fixture.apply().outcome == .converged)
        let first = try fixture.writtenExpiry("n1")
        // Six and a half days on, the agent of n1 missed every renewal: only status looks.
        fixture.clock.advance(by: lifetime - 12 * 3_600)
        let status = try await fixture.controller.status()
        #expect(
            status.warnings.contains { $0.hasPrefix("node n1: its agent's certificate expires at") },
            "\(status.warnings)")
        #expect(try fixture.writtenExpiry("n1") == first)
        #expect(try await fixture.apply().outcome == .converged)
        #expect(try fixture.writtenExpiry("n1") > first)
        let after = try await fixture.controller.status()
        #expect(!after.warnings.contains { $0.contains("certificate") }, "\(after.warnings)")
        #expect(after.nodes.allSatisfy { $0.reachable }, "\(after.nodes)")
        await fixture.stop()
    }
}
