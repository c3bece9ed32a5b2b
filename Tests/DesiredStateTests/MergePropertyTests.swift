import MeshwardTestSupport
import Testing

@testable import DesiredState

@Suite("Merging files")
struct MergePropertyTests {
    /// A random spec as YAML fragments: the header, one fragment per node and one per flow.
    private static func randomSpec(
        using random: inout SeededRandom
    ) -> (header: String, nodes: [String], flows: [String]) {
        let tiers = ["web", "app", "db", "cache"]
        let nodeCount = Int.random(in: 2...14, using: &random)
        var names: [String] = []
        var nodes: [String] = []
        for index in 0..<nodeCount {
            let name = "n\(index)-\(Int.random(in: 0...99, using: &random))"
            names.append(name)
            var addresses: [String] = []
            let shape = Int.random(in: 0...2, using: &random)
            if shape != 1 { addresses.append("198.18.\(index / 200).\(index % 200 + 1)") }
            if shape != 0 { addresses.append("\"2001:db8::\(String(index + 1, radix: 16))\"") }
            addresses.shuffle(using: &random)
            let tier = tiers.randomElement(using: &random) ?? "web"
            nodes.append(
                """
                  - name: \(name)
                    addresses: [\(addresses.joined(separator: ", "))]
                    labels: { tier: \(tier), zone: z\(Int.random(in: 0...1, using: &random)) }

                """)
        }
        let portChoices = ["tcp/80", "tcp/443", "udp/53", "tcp", "icmp", "icmpv6", "sctp/9000", "udp/4789"]
        var flows: [String] = []
        for index in 0..<Int.random(in: 1...8, using: &random) {
            func selector() -> String {
                switch Int.random(in: 0...3, using: &random) {
                case 0: "{}"
                case 1: "{ name: \(names.randomElement(using: &random) ?? "n0") }"
                case 2: "{ tier: \(tiers.randomElement(using: &random) ?? "web"), zone: z0 }"
                default: "{ tier: \(tiers.randomElement(using: &random) ?? "web") }"
                }
            }
            var flow = "  - name: flow-\(index)\n    from: \(selector())\n    to: \(selector())\n"
            if Bool.random(using: &random) {
                let ports = (0..<Int.random(in: 1...3, using: &random)).map { _ in
                    portChoices.randomElement(using: &random) ?? "tcp"
                }
                flow += "    ports: [\(ports.joined(separator: ", "))]\n"
            }
            flows.append(flow)
        }
        let header = "version: 1\ncluster: random\ndefaults: { cipher: aes-gcm-128, drain: 2s }\n"
        return (header, nodes, flows)
    }

    @Test(
        "a spec split across files in any order compiles to the same intent and revision",
        arguments: [UInt64(1), 2, 3, 0x4d57, 20_240_601, 987_654_321])
    func splitAnyOrder(seed: UInt64) throws {
        print("merge property seed: \(seed)")
        var random = SeededRandom(seed: seed)
        for _ in 0..<10 {
            let spec = Self.randomSpec(using: &random)
            let whole = spec.header + "nodes:\n" + spec.nodes.joined() + "flows:\n" + spec.flows.joined()
            let reference = SpecTesting.load(whole)
            // A flow whose selectors pick one node on both sides is an error; such specs are skipped.
            guard let expected = reference.intent else {
                #expect(
                    reference.errors.allSatisfy { $0.message.contains("on both sides") },
                    "seed \(seed): \(reference.diagnostics.map(\.description))")
                continue
            }
            for _ in 0..<4 {
                let fileCount = Int.random(in: 2...5, using: &random)
                var nodeParts = [[String]](repeating: [], count: fileCount)
                var flowParts = [[String]](repeating: [], count: fileCount)
                for node in spec.nodes.shuffled(using: &random) {
                    nodeParts[Int.random(in: 0..<fileCount, using: &random)].append(node)
                }
                for flow in spec.flows.shuffled(using: &random) {
                    flowParts[Int.random(in: 0..<fileCount, using: &random)].append(flow)
                }
                var files: [(String, String)] = []
                for index in 0..<fileCount {
                    var text = index == 0 || Bool.random(using: &random) ? spec.header : ""
                    if !nodeParts[index].isEmpty { text += "nodes:\n" + nodeParts[index].joined() }
                    if !flowParts[index].isEmpty { text += "flows:\n" + flowParts[index].joined() }
                    if text.isEmpty { text = "nodes: []\n" }
                    files.append(("part-\(Int.random(in: 0...9999, using: &random))-\(index).yaml", text))
                }
                files.shuffle(using: &random)
                let result = SpecTesting.load(files)
                let intent = try #require(result.intent, "seed \(seed): \(result.diagnostics.map(\.description))")
                #expect(intent == expected, "seed \(seed)")
                #expect(intent.revision == expected.revision, "seed \(seed)")
            }
        }
    }

    @Test("settings repeated alike in several files are accepted")
    func repeatedSettings() {
        let header = "version: 1\ncluster: c\nreqid: 7\ndefaults: { drain: 5s, rekey: { every: 1h } }\n"
        let result = SpecTesting.load([
            ("a.yaml", header + "nodes:\n  - name: a\n    addresses: [198.18.0.1]\n"),
            ("b.yaml", header + "nodes:\n  - name: b\n    addresses: [198.18.0.2]\n"),
        ])
        #expect(result.intent?.reqid == 7)
        #expect(result.intent?.nodes.count == 2)
    }
}
