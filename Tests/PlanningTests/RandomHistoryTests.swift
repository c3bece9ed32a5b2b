import DesiredState
import Foundation
import MeshwardCore
import MeshwardTestSupport
import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

/// Sampled spec histories (nodes joining, leaving and re-addressed; flows and ports added and
/// removed; ciphers and enforcement changed; rekeys; re-images; refused operations), each step
/// converged with continuity checked in every state each pass can reach. The histories are a
/// sample; the states of each pass are not.
///
/// Seeds are fixed and printed; `MESHWARD_TEST_SEED=N` replays one history.
@Suite("Random histories")
struct RandomHistoryTests {
    static var seeds: [UInt64] {
        if let text = ProcessInfo.processInfo.environment["MESHWARD_TEST_SEED"], let seed = UInt64(text) {
            return [seed]
        }
        return [11, 23, 37, 41, 59, 67]
    }

    @Test("a sampled history keeps continuity in every reachable state and converges", arguments: seeds)
    func history(seed: UInt64) async throws {
        print("sampled history: seed \(seed)")
        var random = SeededRandom(seed: seed)
        let harness = ContinuityHarness(seed: seed)
        var spec = RandomSpec.initial(&random)
        var log: [String] = ["seed \(seed)", "start: \(spec)"]
        try await harness.converge(try spec.compile())
        for step in 1...8 {
            var requests: [ChannelID: Date] = [:]
            let event = RandomSpec.mutate(&spec, harness: harness, requests: &requests, random: &random)
            log.append("step \(step): \(event) -> \(spec)")
            let intent = try spec.compile()
            let faulty = random.next() % 4 == 0
            if faulty, let node = spec.nodes.randomElement(using: &random) {
                let errno: Int32 = [17, 2, 3, 105, 1, 22].randomElement(using: &random) ?? 22
                harness.fleet.failOperation(on: node.name, nth: Int(random.next() % 3) + 1, errno: errno)
                log.append("  fault: \(node.name) fails an operation with errno \(errno)")
            }
            do {
                let passes = try await harness.converge(intent, rekeyRequests: requests)
                #expect(
                    passes <= ConvergenceBound.passesPerChange + (faulty ? 2 : 0),
                    "step \(step) took \(passes) passes\n\(log.joined(separator: "\n"))")
                try harness.assertConverged(intent)
            } catch {
                Issue.record("\(error)\n\(log.joined(separator: "\n"))")
                return
            }
            #expect(harness.violations.isEmpty, "\(harness.violations.prefix(5))\n\(log.joined(separator: "\n"))")
            if !harness.violations.isEmpty { return }
        }
        print(
            "seed \(seed): \(harness.fleetStates) fleet states of \(harness.searches.count) passes covered by "
                + "\(harness.checkedStates) channel states; \(harness.checkedOperations) operations")
        #expect(harness.checkedOperations > 40)
        #expect(harness.checkedStates > 200)
        #expect(harness.checkedStates == harness.existingStates)
    }
}

/// Generates and mutates small specs.
enum RandomSpec {
    static let ports = ["tcp/8080", "udp/53", "tcp/5432", "sctp/9000"]
    static let ciphers = ["aes-gcm-128", "aes-gcm-256", "chacha20-poly1305", "aes-cbc-hmac-sha256"]

    static func initial(_ random: inout SeededRandom) -> FleetSpec {
        let count = Int(random.next() % 3) + 2
        let nodes = (1...count).map { FleetSpec.node($0, ipv6: random.next() % 2 == 0) }
        var spec = FleetSpec(nodes: nodes, flows: [])
        for _ in 0..<max(1, count - 1) { addFlow(&spec, &random) }
        return spec
    }

    static func addFlow(_ spec: inout FleetSpec, _ random: inout SeededRandom) {
        guard spec.nodes.count >= 2 else { return }
        let from = spec.nodes.randomElement(using: &random)!
        let to = spec.nodes.filter { $0.name != from.name }.randomElement(using: &random)!
        let ported = random.next() % 2 == 0
        let name = "f\(random.next() % 100_000)"
        guard !spec.flows.contains(where: { Set([$0.from, $0.to]) == Set([from.name, to.name]) }) else { return }
        spec.flows.append(
            .init(
                name: name, from: from.name, to: to.name,
                ports: ported ? [ports.randomElement(using: &random)!] : [], cipher: nil))
    }

    static func mutate(
        _ spec: inout FleetSpec, harness: ContinuityHarness, requests: inout [ChannelID: Date],
        random: inout SeededRandom
    ) -> String {
        switch random.next() % 10 {
        case 0:
            let index = (spec.nodes.map { Int($0.name.dropFirst()) ?? 0 }.max() ?? 0) + 1
            guard index < 40 else { return "no join (pool full)" }
            spec.nodes.append(FleetSpec.node(index, ipv6: random.next() % 2 == 0))
            addFlow(&spec, &random)
            return "node n\(index) joins"
        case 1:
            guard spec.nodes.count > 2, let node = spec.nodes.randomElement(using: &random) else { return "no leave" }
            spec.nodes.removeAll { $0.name == node.name }
            spec.flows.removeAll { $0.from == node.name || $0.to == node.name }
            return "node \(node.name) leaves"
        case 2:
            addFlow(&spec, &random)
            return "a flow is added"
        case 3:
            guard !spec.flows.isEmpty else { return "no flow to remove" }
            spec.flows.remove(at: Int(random.next() % UInt64(spec.flows.count)))
            return "a flow is removed"
        case 4:
            guard !spec.flows.isEmpty else { return "no flow for a port" }
            let index = Int(random.next() % UInt64(spec.flows.count))
            if spec.flows[index].ports.isEmpty {
                spec.flows[index].ports = [ports.randomElement(using: &random)!]
            } else {
                spec.flows[index].ports = []
            }
            return "flow \(spec.flows[index].name) ports now \(spec.flows[index].ports)"
        case 5:
            spec.cipher = ciphers.randomElement(using: &random)!
            return "cipher \(spec.cipher)"
        case 6:
            spec.enforcement = spec.enforcement == "required" ? "permissive" : "required"
            return "enforcement \(spec.enforcement)"
        case 7:
            let index = Int(random.next() % UInt64(spec.nodes.count))
            spec.nodes[index].ipv4 = "198.18.1.\(Int(random.next() % 200) + 10)"
            if spec.nodes.filter({ $0.ipv4 == spec.nodes[index].ipv4 }).count > 1 {
                spec.nodes[index].ipv4 = "198.18.2.\(index)"
            }
            return "node \(spec.nodes[index].name) re-addressed to \(spec.nodes[index].ipv4 ?? "-")"
        case 8:
            guard let node = spec.nodes.randomElement(using: &random) else { return "no wipe" }
            harness.wipe(node.name)
            return "node \(node.name) re-imaged"
        default:
            harness.clock.advance(by: 1)
            for id in harness.records.keys where random.next() % 2 == 0 { requests[id] = harness.clock.now() }
            return "rekey of \(requests.count) channels"
        }
    }
}
