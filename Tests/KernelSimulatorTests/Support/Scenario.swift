import Kernel
import KernelSimulator
import MeshwardCore
import Testing

/// One step of a scenario: an action, then what every probe must show.
struct Step: Sendable {
    let action: Action
    let expected: [Probe: PacketOutcome]
}

/// A fleet, a setup applied without checks, warm-up traffic, then steps checked one by one.
struct Scenario: Sendable, CustomTestStringConvertible {
    let name: String
    let nodes: [String]
    let setup: [Action]
    let steps: [Step]

    var testDescription: String { name }

    /// Packets sent along every probe after each step.
    static let packetsPerProbe = 3
    /// Packets sent along every probe after the setup, so that receivers have seen sequence numbers.
    static let warmUpPackets = 50

    /// Runs the scenario: after every single action, every probe carries `packetsPerProbe`
    /// packets and each must meet the step's expectation; a drop must move its counter on the
    /// node that dropped it by exactly one per packet.
    func run() {
        var state = FleetValues.state(nodes)
        for action in setup {
            #expect(action.perform(on: &state) == .applied, "setup \(action)")
        }
        let probes = Set(steps.flatMap(\.expected.keys))
        for probe in probes {
            for _ in 0..<Self.warmUpPackets { _ = state.send(from: probe.from, to: FleetValues.address(of: probe.to)) }
        }
        for (index, step) in steps.enumerated() {
            #expect(step.action.perform(on: &state) == .applied, "step \(index + 1): \(step.action)")
            for (probe, expected) in step.expected.sorted(by: { $0.key.description < $1.key.description }) {
                let dropper: String? = {
                    guard case .dropped(let counter) = expected else { return nil }
                    return counter.hasPrefix("XfrmOut") ? probe.from : probe.to
                }()
                let counterBefore = dropper.flatMap { counterValue(expected, on: $0, in: state) }
                for _ in 0..<Self.packetsPerProbe {
                    let outcome = state.send(from: probe.from, to: FleetValues.address(of: probe.to))
                    #expect(outcome == expected, "step \(index + 1) (\(step.action)): \(probe)")
                }
                if let dropper, let counterBefore {
                    let counterAfter = counterValue(expected, on: dropper, in: state) ?? 0
                    #expect(
                        counterAfter - counterBefore == UInt64(Self.packetsPerProbe),
                        "step \(index + 1): \(expected) counted on \(dropper)")
                }
            }
        }
    }

    private func counterValue(_ outcome: PacketOutcome, on node: String, in state: SimulatedFleetState) -> UInt64? {
        guard case .dropped(let counter) = outcome else { return nil }
        return state.nodes[node]?.statistics[counter] ?? 0
    }
}

/// Expectations for the two directions of a two-node fleet.
func both(_ forward: PacketOutcome, _ reverse: PacketOutcome) -> [Probe: PacketOutcome] {
    [.ab: forward, .ba: reverse]
}

func encrypted(_ generation: Generation) -> PacketOutcome { .deliveredEncrypted(spi: generation.spi) }

let plaintext = PacketOutcome.deliveredPlaintext
