import Kernel
import KernelSimulator
import MeshwardCore
import Testing

/// The continuity invariant checked through the fleet's operation observer while whole stages
/// run as batches, several nodes at once: after every single operation, every pair of nodes
/// exchanges packets, and a pair once encrypted never falls back to plaintext.
@Suite("Continuity under concurrent batches")
struct ContinuityTests {
    static let nodes = ["a", "b", "c"]
    static let pairs = nodes.flatMap { from in nodes.filter { $0 != from }.map { Probe(from, $0) } }

    /// Node c joins a fleet in which a and b already talk encrypted: four new channels.
    static let joining: [(Channel, Generation)] = [
        (Channel(from: "a", to: "c"), Generation(0x201)),
        (Channel(from: "c", to: "a"), Generation(0x202)),
        (Channel(from: "b", to: "c"), Generation(0x203)),
        (Channel(from: "c", to: "b"), Generation(0x204)),
    ]

    /// The staged stages of design section 4 for the joining channels, as per-node batches.
    static let stagedStages: [[Action]] = [
        joining.flatMap { channel, generation in
            [channel.addInboundSA(generation), channel.addInboundPolicy(required: false)]
        },
        joining.flatMap { channel, generation in
            [channel.addOutboundSA(generation), channel.addOutboundPolicy(generation)]
        },
        joining.map { channel, _ in channel.setInboundPolicy(required: true) },
    ]

    /// The same operations with enforcement before the senders encrypt.
    static let enforcingFirst: [[Action]] = [stagedStages[0], stagedStages[2], stagedStages[1]]

    /// Runs each stage as one batch per node, the nodes concurrently; returns the violations the
    /// observer saw and the final outcome of every pair.
    static func run(_ stages: [[Action]]) async throws -> (violations: [String], final: [Probe: PacketOutcome]) {
        var initial = FleetValues.state(nodes)
        let ab = Channel(from: "a", to: "b")
        let ba = Channel(from: "b", to: "a")
        for action in ab.install(Generation(0x101)) + ba.install(Generation(0x102)) {
            #expect(action.perform(on: &initial) == .applied)
        }
        let fleet = SimulatedFleet(state: initial)
        let violations = Log()
        let encrypted = Log()
        fleet.setOperationObserver { node, operation, outcome, state in
            guard outcome == .applied else {
                violations.append("\(node): \(operation) \(outcome)")
                return
            }
            for pair in pairs {
                let result = state.send(from: pair.from, to: FleetValues.address(of: pair.to))
                switch result {
                case .deliveredEncrypted:
                    if !encrypted.entries.contains(pair.description) { encrypted.append(pair.description) }
                case .deliveredPlaintext:
                    if encrypted.entries.contains(pair.description) {
                        violations.append("after \(node): \(operation): \(pair) fell back to plaintext")
                    }
                case .dropped, .undeliverable:
                    violations.append("after \(node): \(operation): \(pair) \(result)")
                }
            }
        }
        for stage in stages {
            let batches = Dictionary(grouping: stage) { action -> String in
                if case .apply(let node, _) = action { return node }
                return ""
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (node, actions) in batches {
                    let operations = actions.compactMap { action -> KernelOperation? in
                        if case .apply(_, let operation) = action { return operation }
                        return nil
                    }
                    let kernel = fleet.kernel(for: node, reqid: FleetValues.reqid)
                    group.addTask { _ = try await kernel.apply(operations) }
                }
                try await group.waitForAll()
            }
        }
        fleet.setOperationObserver(nil)
        var final: [Probe: PacketOutcome] = [:]
        for pair in pairs { final[pair] = fleet.send(from: pair.from, to: FleetValues.address(of: pair.to)) }
        return (violations.entries, final)
    }

    @Test("the staged join keeps every pair talking and ends with every pair encrypted", arguments: 1...5)
    func stagedJoin(round: Int) async throws {
        let (violations, final) = try await Self.run(Self.stagedStages)
        #expect(violations.isEmpty, "round \(round)")
        for (pair, outcome) in final {
            guard case .deliveredEncrypted = outcome else {
                Issue.record("\(pair) ends \(outcome)")
                continue
            }
        }
    }

    @Test("enforcing before the senders encrypt is caught by the observer")
    func enforcingFirstIsCaught() async throws {
        let (violations, _) = try await Self.run(Self.enforcingFirst)
        #expect(violations.contains { $0.contains("XfrmInTmplMismatch") })
    }
}
