import Agent
import AgentTestSupport
import DesiredState
import Foundation
import Kernel
import KernelSimulator
import MeshwardCore
import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

/// A node rebooted behind its agent: its kernel is wiped, its agent restarts on the same agent
/// directory, and the boot guard keeps its traffic to required peers off the wire until the
/// controller restores the channels make-before-break (the harness checks every reachable state
/// of every pass, as for any restore).
@Suite("Boot guard behind agents")
struct BootGuardContinuityTests {
    static let nodes = ["n1", "n2", "n3"]

    /// A converged three-tier fleet behind agents with agent directories.
    struct Fleet {
        let harness: ContinuityHarness
        let agents: InProcessAgents
        let directories: [String: AgentDirectory]
        var restarted: [InProcessAgents] = []

        static func converged(_ spec: FleetSpec, seed: UInt64) async throws -> Fleet {
            let harness = ContinuityHarness(seed: seed)
            var directories: [String: AgentDirectory] = [:]
            for node in BootGuardContinuityTests.nodes {
                let path = NSTemporaryDirectory() + "meshward-bootguard-\(node)-\(UUID().uuidString)"
                try FileManager.default.createDirectory(
                    atPath: path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
                directories[node] = AgentDirectory(path: path)
            }
            let agents = try await InProcessAgents.start(
                nodes: BootGuardContinuityTests.nodes, connector: SimulatedConnector(fleet: harness.fleet),
                directories: directories)
            harness.routeThroughAgents(AgentFleetKernels(fleet: harness.fleet, agents: agents))
            try await harness.converge(try spec.compile())
            #expect(harness.violations == [])
            return Fleet(harness: harness, agents: agents, directories: directories)
        }

        /// `node` reboots: its kernel is wiped, its agent stops and starts again on its directory.
        mutating func reboot(_ node: String) async throws {
            agents.servers[node]?.shutdown()
            harness.wipe(node)
            let again = try await InProcessAgents.start(
                nodes: [node], connector: SimulatedConnector(fleet: harness.fleet), ca: agents.ca,
                directories: directories.filter { $0.key == node })
            restarted.append(again)
            harness.routeThroughAgents(AgentFleetKernels(fleet: harness.fleet, agents: agents, restarted: restarted))
        }

        func stop() async {
            await agents.stop()
            for again in restarted { await again.stop() }
            for directory in directories.values { try? FileManager.default.removeItem(atPath: directory.path) }
        }

        /// The owned outbound policies of `node`'s kernel.
        func outboundPolicies(_ node: String) throws -> [SecurityPolicy] {
            try harness.fleet.withState { try $0.observe(node: node, reqid: harness.reqid) }.policies.filter {
                $0.direction == .outbound
            }
        }

        /// Guard policies (outbound, required, no SPI) anywhere in the fleet.
        func guards() throws -> [String] {
            try BootGuardContinuityTests.nodes.flatMap { node in
                try outboundPolicies(node).filter(BootGuard.isGuard).map { "\(node): \($0)" }
            }
        }
    }

    /// One probe per traffic selector of every channel of `intent` that touches `node`, as it
    /// leaves the sender.
    static func probe(
        _ intent: FleetIntent, touching node: String, in fleet: SimulatedFleet
    ) -> [(
        ChannelIntent, TrafficMatch, PacketDeparture
    )] {
        var probes: [(ChannelIntent, TrafficMatch, PacketDeparture)] = []
        for channel in intent.channels where channel.id.from == node || channel.id.to == node {
            for traffic in channel.traffic {
                let departure = fleet.withState { state in
                    state.transmit(
                        from: channel.id.from, to: channel.destination, transport: traffic.transport ?? .udp,
                        sourcePort: traffic.sourcePort ?? 40_000, destinationPort: traffic.destinationPort ?? 4_000)
                }
                probes.append((channel, traffic, departure))
            }
        }
        return probes
    }

    @Test(
        "a node rebooted behind its agent sends nothing in plaintext to its required peers before the restore; the restore loses nothing elsewhere and leaves no guard",
        arguments: ["n1", "n2", "n3"])
    func rebootedNodeIsGuarded(node: String) async throws {
        var fleet = try await Fleet.converged(FleetSpec.threeTier, seed: 11)
        let intent = try FleetSpec.threeTier.compile()
        // Each agent listed exactly its outbound selectors (all channels are required).
        for name in Self.nodes {
            let listed = try fleet.directories[name].map { try $0.readBootGuard() }?.map(\.selector) ?? []
            #expect(Set(listed) == Set(try fleet.outboundPolicies(name).map(\.selector)), "\(name)")
            #expect(!listed.isEmpty, "\(name) lists nothing")
        }
        let before = fleet.harness.records
        try await fleet.reboot(node)
        // Between the restart and the controller's first pass: every selector from the node is
        // dropped by its own kernel, and nothing between it and its peers is plaintext.
        for (channel, traffic, departure) in Self.probe(intent, touching: node, in: fleet.harness.fleet) {
            if channel.id.from == node {
                #expect(departure == .ended(.dropped(.outNoStates)), "\(channel.id) \(traffic): \(departure)")
            } else if case .inFlight(let packet) = departure {
                #expect(packet.spi != nil, "\(channel.id) \(traffic) left in plaintext")
            }
        }
        let passes = try await fleet.harness.converge(intent)
        #expect(fleet.harness.violations == [])
        try fleet.harness.assertConverged(intent)
        #expect(try fleet.guards() == [])
        let touching = Set(intent.channels.map(\.id).filter { $0.from == node || $0.to == node })
        #expect(Set(fleet.harness.restoredAfter.keys) == touching)
        #expect(fleet.harness.restoredAfter.values.allSatisfy { $0 <= passes }, "\(fleet.harness.restoredAfter)")
        for id in intent.channels.map(\.id) where !touching.contains(id) {
            #expect(
                fleet.harness.records[id]?.generations.last { $0.state == .active }
                    == before[id]?.generations.last { $0.state == .active }, "\(id) does not touch \(node)")
        }
        // The restarted agent's list follows the restored kernel.
        let restartedServer = try #require(fleet.restarted.last?.servers[node])
        #expect(
            Set(restartedServer.bootGuardEntries.map(\.selector))
                == Set(try fleet.outboundPolicies(node).map(\.selector)))
        await fleet.stop()
    }

    @Test("in a permissive fleet a rebooted node's agent lists nothing, installs nothing, and its traffic still flows")
    func permissiveNodeIsNotBlocked() async throws {
        var spec = FleetSpec.threeTier
        spec.enforcement = "permissive"
        var fleet = try await Fleet.converged(spec, seed: 12)
        let intent = try spec.compile()
        for name in Self.nodes { #expect(try fleet.directories[name]?.readBootGuard() == [], "\(name)") }
        try await fleet.reboot("n2")
        #expect(try fleet.outboundPolicies("n2") == [])
        for (channel, traffic, _) in Self.probe(intent, touching: "n2", in: fleet.harness.fleet)
        where channel.id.from == "n2" {
            let outcome = fleet.harness.fleet.send(
                from: "n2", to: channel.destination, transport: traffic.transport ?? .udp,
                sourcePort: traffic.sourcePort ?? 40_000, destinationPort: traffic.destinationPort ?? 4_000)
            #expect(outcome == .deliveredPlaintext, "\(channel.id) \(traffic): \(outcome)")
        }
        try await fleet.harness.converge(intent)
        #expect(fleet.harness.violations == [])
        try fleet.harness.assertConverged(intent)
        await fleet.stop()
    }

    @Test("a guard whose channel the spec now has as permissive is replaced, and the channel ends permissive")
    func guardOfChannelTurnedPermissiveIsReplaced() async throws {
        var fleet = try await Fleet.converged(FleetSpec.threeTier, seed: 13)
        try await fleet.reboot("n2")
        #expect(try !fleet.guards().isEmpty)
        var spec = FleetSpec.threeTier
        spec.enforcement = "permissive"
        let intent = try spec.compile()
        try await fleet.harness.converge(intent)
        #expect(fleet.harness.violations == [])
        try fleet.harness.assertConverged(intent)
        #expect(try fleet.guards() == [])
        #expect(fleet.restarted.last?.servers["n2"]?.bootGuardEntries == [])
        await fleet.stop()
    }

    @Test("a guard whose channel left the spec is removed like any owned policy")
    func guardOfRemovedPeerIsRemoved() async throws {
        var fleet = try await Fleet.converged(FleetSpec.threeTier, seed: 14)
        try await fleet.reboot("n2")
        let n3 = try FleetSpec.threeTier.compile().nodes.first { $0.name == "n3" }?.addresses ?? []
        #expect(try fleet.guards().contains { guardLine in n3.contains { guardLine.contains("dst \($0)/") } })
        var spec = FleetSpec.threeTier
        spec.flows.removeAll { $0.name == "app-db" }
        let intent = try spec.compile()
        try await fleet.harness.converge(intent)
        #expect(fleet.harness.violations == [])
        try fleet.harness.assertConverged(intent)
        #expect(try fleet.guards() == [])
        let entries = fleet.restarted.last?.servers["n2"]?.bootGuardEntries ?? []
        #expect(!entries.contains { n3.contains($0.peer.address) }, "\(entries)")
        #expect(!entries.isEmpty)
        await fleet.stop()
    }
}
