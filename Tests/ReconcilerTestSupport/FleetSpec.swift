import DesiredState
import Foundation
import MeshwardCore

/// A small fleet described in code and written out as a real spec file, so tests go through
/// the same loader operators use.
struct FleetSpec: Hashable, CustomStringConvertible {
    struct Node: Hashable {
        var name: String
        var ipv4: String?
        var ipv6: String?
        var tier: String
    }

    struct Flow: Hashable {
        var name: String
        var from: String
        var to: String
        var ports: [String]
        var cipher: String?
    }

    var nodes: [Node]
    var flows: [Flow]
    var cipher = "aes-gcm-256"
    var enforcement = "required"
    var rekeyEvery = "24h"
    var drain = "5s"
    var rekeyPackets: Int?
    /// Per node, an endpoint in place of the default `sim` (`agent:127.0.0.1:PORT`).
    var endpoints: [String: String] = [:]

    var yaml: String {
        var lines = [
            "version: 1", "cluster: test", "defaults:", "  cipher: \(cipher)", "  rekey:", "    every: \(rekeyEvery)",
            "  drain: \(drain)", "  enforcement: \(enforcement)", "  endpoint: sim", "nodes:",
        ]
        if let rekeyPackets { lines.insert("    packets: \(rekeyPackets)", at: 6) }
        for node in nodes {
            let addresses = [node.ipv4, node.ipv6].compactMap { $0 }.map { "\"\($0)\"" }.joined(separator: ", ")
            lines.append("  - name: \(node.name)")
            lines.append("    addresses: [\(addresses)]")
            lines.append("    labels: { tier: \(node.tier) }")
            if let endpoint = endpoints[node.name] { lines.append("    endpoint: \"\(endpoint)\"") }
        }
        lines.append(flows.isEmpty ? "flows: []" : "flows:")
        for flow in flows {
            lines.append("  - name: \(flow.name)")
            lines.append("    from: { name: \(flow.from) }")
            lines.append("    to: { name: \(flow.to) }")
            if !flow.ports.isEmpty { lines.append("    ports: [\(flow.ports.joined(separator: ", "))]") }
            if let cipher = flow.cipher { lines.append("    cipher: \(cipher)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    var description: String {
        "nodes \(nodes.map { "\($0.name)(\($0.ipv4 ?? "-"),\($0.ipv6 ?? "-"))" }.joined(separator: " ")); "
            + "flows \(flows.map { "\($0.from)->\($0.to)\($0.ports)\($0.cipher ?? "")" }.joined(separator: " ")); "
            + "cipher \(cipher) enforcement \(enforcement)"
    }

    /// Compiles the spec through `SpecLoader`, failing the test with the diagnostics if it does not validate.
    func compile() throws -> FleetIntent {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "meshward-spec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("fleet.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let result = SpecLoader().load(paths: [file.path])
        guard let intent = result.intent else {
            throw SpecTextError(message: result.diagnostics.map(\.description).joined(separator: "\n") + "\n" + yaml)
        }
        return intent
    }

    static func node(_ index: Int, tier: String = "app", ipv6: Bool = true) -> Node {
        Node(
            name: "n\(index)", ipv4: "198.18.0.\(10 + index)", ipv6: ipv6 ? "2001:db8::\(10 + index)" : nil, tier: tier)
    }
}

struct SpecTextError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
