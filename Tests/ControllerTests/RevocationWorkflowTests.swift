import Agent
import DesiredState
import Foundation
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Store
import Testing

@testable import Controller
@testable import Reconciler
@testable import ReconcilerTestSupport

/// Revocation through the controller's commands, on simulated kernels and a Store in a state
/// directory: `agent revoke` and an apply that removes a node.
@Suite("Revocation through apply")
struct RevocationWorkflowTests {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    final class Fixture: Sendable {
        let directory: URL
        let state: URL
        let controller: MeshwardController

        init(logger: Logger) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-revoke-\(UUID())")
            state = directory.appendingPathComponent("state")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            controller = MeshwardController(stateDirectory: state.path, logger: logger, clock: ManualClock())
        }

        func apply(_ intent: FleetIntent) async throws -> ApplyDocument {
            try await controller.apply(intent, source: "fleet.yaml", waitForDrain: true)
        }

        /// Writes an agent directory for `node`, which records its serial as issued, and
        /// returns that serial as the Store holds it.
        func credentials(_ intent: FleetIntent, node: String) async throws -> String {
            let out = directory.appendingPathComponent("agent-\(node)").path
            _ = try await controller.writeAgentCredentials(intent, node: node, to: AgentDirectory(path: out))
            let issued = try await store().issuedCertificates(node: node)
            return try #require(issued.last).serial
        }

        func store() throws -> any ControllerStore {
            try StateStore.open(
                directory: state.path, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        }

        func fleet() throws -> SimulatedFleetState { try SimulatedFleet.load(from: controller.simulatedFleetURL).state }

        func remove() { try? FileManager.default.removeItem(at: directory) }
    }

    /// The addresses of `node` in `state`.
    static func addresses(of node: String, in state: SimulatedFleetState) -> Set<IPAddress> {
        Set(state.nodes[node]?.addresses ?? [])
    }

    @Test(
        "agent revoke, then apply: the revoked node's channels are gone from its peers and the Store, the node is left untouched, and status warns of it"
    )
    func revokeThenApply() async throws {
        let fixture = try Fixture(logger: logger)
        defer { fixture.remove() }
        let intent = try FleetSpec.threeTier.compile()
        _ = try await fixture.apply(intent)
        let serial = try await fixture.credentials(intent, node: "n3")
        let before = try fixture.fleet()
        let n3 = Self.addresses(of: "n3", in: before)
        #expect(before.nodes["n2"]?.securityAssociations.contains { n3.contains($0.destination) } == true)

        let revoked = try await fixture.controller.revokeAgent(intent, node: "n3", reason: "host retired")
        #expect(revoked.map(\.serial) == [serial])
        #expect(revoked.map(\.reason) == ["host retired"])
        // Revoking again finds nothing new.
        #expect(try await fixture.controller.revokeAgent(intent, node: "n3", reason: "again") == [])

        let document = try await fixture.apply(intent)
        #expect(document.outcome == .converged, "\(document.outcome)")
        let after = try fixture.fleet()
        let n2 = try #require(after.nodes["n2"])
        #expect(!n2.securityAssociations.contains { n3.contains($0.destination) || n3.contains($0.source) })
        #expect(
            !n2.policies.contains {
                n3.contains($0.selector.source.address) || n3.contains($0.selector.destination.address)
            })
        // The n1 <-> n2 channels stay, and n3 was never dialled: what it held is as it was.
        #expect(n2.securityAssociations.contains { Self.addresses(of: "n1", in: after).contains($0.source) })
        #expect(after.nodes["n3"]?.securityAssociations == before.nodes["n3"]?.securityAssociations)
        #expect(after.nodes["n3"]?.policies == before.nodes["n3"]?.policies)
        let channels = try await fixture.store().loadChannels()
        #expect(channels.keys.allSatisfy { $0.from != "n3" && $0.to != "n3" }, "\(channels.keys)")
        #expect(!channels.isEmpty)
        let status = try await fixture.controller.status()
        #expect(
            status.warnings.contains {
                $0.hasPrefix("node n3: every certificate of it is revoked; it is never dialled")
            },
            "\(status.warnings)")
        #expect(status.nodes.allSatisfy { $0.reachable })
    }

    @Test("agent revoke of a node the spec does not name is refused, naming the known nodes, and revokes nothing")
    func revokeUnknownNode() async throws {
        let fixture = try Fixture(logger: logger)
        defer { fixture.remove() }
        let intent = try FleetSpec.threeTier.compile()
        _ = try await fixture.credentials(intent, node: "n1")
        do {
            _ = try await fixture.controller.revokeAgent(intent, node: "n9", reason: "typo")
            Issue.record("revoking n9 succeeded")
        } catch {
            #expect("\(error)".contains("n9"), "\(error)")
            #expect("\(error)".contains("n1"), "\(error)")
        }
        #expect(try await fixture.store().revokedCertificates() == [])
    }

    @Test(
        "an apply that removes a node from the spec revokes its certificates, with the reason, once its channels are gone; the nodes that stay keep theirs"
    )
    func removedNodeEndsRevoked() async throws {
        let fixture = try Fixture(logger: logger)
        defer { fixture.remove() }
        let intent = try FleetSpec.threeTier.compile()
        _ = try await fixture.apply(intent)
        let n3Serial = try await fixture.credentials(intent, node: "n3")
        let n1Serial = try await fixture.credentials(intent, node: "n1")
        var spec = FleetSpec.threeTier
        spec.nodes.removeAll { $0.name == "n3" }
        spec.flows.removeAll { $0.to == "n3" }
        let smaller = try spec.compile()
        let document = try await fixture.apply(smaller)
        #expect(document.outcome == .converged, "\(document.outcome)")

        let store = try fixture.store()
        #expect(try await store.loadChannels().keys.allSatisfy { $0.from != "n3" && $0.to != "n3" })
        let revoked = try await store.revokedCertificates()
        #expect(revoked.map(\.serial) == [n3Serial])
        #expect(revoked.map(\.node) == ["n3"])
        #expect(revoked.map(\.reason) == ["removed from the spec"])
        #expect(!revoked.map(\.serial).contains(n1Serial))
        // The node was dialled to remove its own side before it was revoked.
        let fleet = try fixture.fleet()
        #expect(fleet.nodes["n3"]?.securityAssociations.isEmpty == true)
    }
}
