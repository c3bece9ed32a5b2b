import DesiredState
import Foundation
import KernelSimulator
import MeshwardCore
import Testing

@testable import Reconciler

/// Continuity, checked after every single kernel operation and for every interleaving of a
/// pass's operations across nodes (design.md section 4).
@Suite("Continuity")
struct ContinuityTests {
    static let threeTier = FleetSpec(
        nodes: [
            FleetSpec.node(1, tier: "web"), FleetSpec.node(2, tier: "app"), FleetSpec.node(3, tier: "db", ipv6: false),
        ],
        flows: [
            .init(name: "web-app", from: "n1", to: "n2", ports: ["tcp/8080"], cipher: nil),
            .init(name: "app-db", from: "n2", to: "n3", ports: [], cipher: nil),
        ])

    /// One change to a converged three-tier fleet, named for the table.
    struct Change: CustomTestStringConvertible, Sendable {
        let name: String
        let apply: @Sendable (inout FleetSpec, ContinuityHarness) -> [ChannelID: Date]
        var testDescription: String { name }
    }

    static let changes: [Change] = [
        Change(name: "nothing") { _, _ in [:] },
        Change(name: "rekey every channel on request") { _, harness in
            harness.clock.advance(by: 1)
            return Dictionary(uniqueKeysWithValues: harness.records.keys.map { ($0, harness.clock.now()) })
        },
        Change(name: "keys age past rekey.every") { _, harness in
            harness.clock.advance(by: 25 * 3600)
            return [:]
        },
        Change(name: "a channel's packet counter passes rekey.packets") { spec, harness in
            spec.rekeyPackets = 50
            for _ in 0..<60 {
                _ = harness.fleet.send(
                    from: "n2", to: IPAddress("198.18.0.13")!, transport: .udp, sourcePort: 40_000,
                    destinationPort: 4_000)
            }
            return [:]
        },
        Change(name: "a node joins") { spec, _ in
            spec.nodes.append(FleetSpec.node(4, tier: "web"))
            spec.flows.append(.init(name: "web2-app", from: "n4", to: "n2", ports: ["tcp/8080"], cipher: nil))
            return [:]
        },
        Change(name: "a node leaves") { spec, _ in
            spec.nodes.removeAll { $0.name == "n3" }
            spec.flows.removeAll { $0.to == "n3" }
            return [:]
        },
        Change(name: "a flow is removed") { spec, _ in
            spec.flows.removeAll { $0.name == "web-app" }
            return [:]
        },
        Change(name: "a port is added to a flow") { spec, _ in
            spec.flows[0].ports.append("udp/53")
            return [:]
        },
        Change(name: "the cipher changes") { spec, _ in
            spec.cipher = "chacha20-poly1305"
            return [:]
        },
        Change(name: "enforcement becomes permissive") { spec, _ in
            spec.enforcement = "permissive"
            return [:]
        },
        Change(name: "a node is re-addressed") { spec, _ in
            spec.nodes[1].ipv4 = "198.18.0.99"
            return [:]
        },
        Change(name: "the receiver is re-imaged") { _, harness in
            harness.wipe("n2")
            return [:]
        },
        Change(name: "the sender is re-imaged") { _, harness in
            harness.wipe("n1")
            return [:]
        },
    ]

    @Test("a converged fleet goes through one change without a drop", arguments: changes)
    func change(_ change: Change) async throws {
        let harness = ContinuityHarness(seed: 1)
        var spec = Self.threeTier
        try await harness.converge(try spec.compile())
        let requests = change.apply(&spec, harness)
        let intent = try spec.compile()
        let before = harness.records
        let passes = try await harness.converge(intent, rekeyRequests: requests)
        #expect(harness.violations == [], "\(change.name)")
        if change.name.contains("rekey.packets") {
            let rotated = harness.records.filter { id, record in
                record.generations.last { $0.state == .active }?.number
                    != before[id]?.generations
                    .last { $0.state == .active }?.number
            }
            #expect(rotated.keys.map(\.description) == ["n2->n3/ipv4"], "only the busy channel rotates")
        }
        try harness.assertConverged(intent)
        #expect(passes <= ConvergenceBound.passesPerChange, "\(change.name) took \(passes) passes")
        #expect(harness.checkedOperations > 0 || change.name == "nothing")
    }

    @Test("from an empty fleet to a protected one, every interleaving checked")
    func fromNothing() async throws {
        let harness = ContinuityHarness(seed: 2)
        let intent = try Self.threeTier.compile()
        let passes = try await harness.converge(intent)
        #expect(harness.violations == [])
        try harness.assertConverged(intent)
        #expect(passes <= ConvergenceBound.passesPerChange)
        #expect(harness.checkedOrders > 1, "more than one node was changed in some pass")
    }

    /// Breaking one staging rule must be caught: the check is not vacuous.
    @Test(
        "a broken staging rule is caught",
        arguments: [[FleetPlanner.Rule.receiverFirst], [.enforceAfterSender], [.senderStopsFirst]]
            as [Set<FleetPlanner.Rule>])
    func brokenRuleIsCaught(_ rules: Set<FleetPlanner.Rule>) async throws {
        let harness = ContinuityHarness(seed: 3, rules: rules)
        let intent = try Self.threeTier.compile()
        _ = try? await harness.converge(intent)
        harness.clock.advance(by: 1)
        let requests = Dictionary(uniqueKeysWithValues: harness.records.keys.map { ($0, harness.clock.now()) })
        _ = try? await harness.converge(intent, rekeyRequests: requests)
        #expect(!harness.violations.isEmpty, "switching off \(rules) went unnoticed")
    }
}
