import Foundation
import MeshwardCore
import Testing

/// One change to a converged three-tier fleet (`FleetSpec.threeTier`), named for the table.
struct FleetChange: CustomTestStringConvertible, Sendable {
    let name: String
    let apply: @Sendable (inout FleetSpec, ContinuityHarness) -> [ChannelID: Date]
    var testDescription: String { name }

    /// Every change the continuity suites put the fleet through, directly and behind agents.
    static let all: [FleetChange] = [
        FleetChange(name: "nothing") { _, _ in [:] },
        FleetChange(name: "rekey every channel on request") { _, harness in
            harness.clock.advance(by: 1)
            return Dictionary(uniqueKeysWithValues: harness.records.keys.map { ($0, harness.clock.now()) })
        },
        FleetChange(name: "keys age past rekey.every") { _, harness in
            harness.clock.advance(by: 25 * 3600)
            return [:]
        },
        FleetChange(name: "a channel's packet counter passes rekey.packets") { spec, harness in
            spec.rekeyPackets = 50
            for _ in 0..<60 {
                _ = harness.fleet.send(
                    from: "n2", to: IPAddress("198.18.0.13")!, transport: .udp, sourcePort: 40_000,
                    destinationPort: 4_000)
            }
            return [:]
        },
        FleetChange(name: "a node joins") { spec, _ in
            spec.nodes.append(FleetSpec.node(4, tier: "web"))
            spec.flows.append(.init(name: "web2-app", from: "n4", to: "n2", ports: ["tcp/8080"], cipher: nil))
            return [:]
        },
        FleetChange(name: "a node leaves") { spec, _ in
            spec.nodes.removeAll { $0.name == "n3" }
            spec.flows.removeAll { $0.to == "n3" }
            return [:]
        },
        FleetChange(name: "a flow is removed") { spec, _ in
            spec.flows.removeAll { $0.name == "web-app" }
            return [:]
        },
        FleetChange(name: "a port is added to a flow") { spec, _ in
            spec.flows[0].ports.append("udp/53")
            return [:]
        },
        FleetChange(name: "the cipher changes") { spec, _ in
            spec.cipher = "chacha20-poly1305"
            return [:]
        },
        FleetChange(name: "enforcement becomes permissive") { spec, _ in
            spec.enforcement = "permissive"
            return [:]
        },
        FleetChange(name: "a node is re-addressed") { spec, _ in
            spec.nodes[1].ipv4 = "198.18.0.99"
            return [:]
        },
        FleetChange(name: "the receiver is re-imaged") { _, harness in
            harness.wipe("n2")
            return [:]
        },
        FleetChange(name: "the sender is re-imaged") { _, harness in
            harness.wipe("n1")
            return [:]
        },
    ]
}
