import Foundation
import MeshwardCore

/// Generated specs for benchmarks: addresses from 198.18.0.0/15 and 2001:db8::/32 only.
enum FleetGenerator {
    /// `nodes` nodes in four tiers and one flow from every node to every node.
    static func fullMesh(nodes: Int, dualStack: Bool = false) -> String {
        let tiers = ["web", "app", "db", "cache"]
        var text = "version: 1\ncluster: bench\ndefaults:\n  cipher: aes-gcm-256\n  rekey: { every: 24h }\nnodes:\n"
        for index in 0..<nodes {
            text +=
                "  - name: node-\(index)\n    addresses: [\(addresses(index, dualStack: dualStack))]\n"
                + "    labels: { tier: \(tiers[index % tiers.count]) }\n"
        }
        text += "flows:\n  - name: full-mesh\n    from: {}\n    to: {}\n"
        return text
    }

    /// A three-tier fleet: a third of the nodes each web, app, db; web talks to app on
    /// tcp/8080, app to db on tcp/5432.
    static func threeTier(nodes: Int, dualStack: Bool = false) -> String {
        let tiers = ["web", "app", "db"]
        var text = "version: 1\ncluster: bench\ndefaults:\n  cipher: aes-gcm-256\n  rekey: { every: 24h }\nnodes:\n"
        for index in 0..<nodes {
            text +=
                "  - name: node-\(index)\n    addresses: [\(addresses(index, dualStack: dualStack))]\n"
                + "    labels: { tier: \(tiers[index % 3]) }\n"
        }
        text += """
            flows:
              - { name: web-to-app, from: { tier: web }, to: { tier: app }, ports: [tcp/8080] }
              - { name: app-to-db, from: { tier: app }, to: { tier: db }, ports: [tcp/5432] }

            """
        return text
    }

    /// `nodes` nodes in cells of ten (the last one may be smaller), each cell a three-tier
    /// service of its own (3 web, 4 app, 3 db) whose tiers talk only inside the cell: about five
    /// channels a node, the shape of a large fleet of many small services.
    static func cells(nodes: Int) -> String {
        let tiers = ["web", "web", "web", "app", "app", "app", "app", "db", "db", "db"]
        var text = "version: 1\ncluster: bench\ndefaults:\n  cipher: aes-gcm-256\n  rekey: { every: 24h }\nnodes:\n"
        for index in 0..<nodes {
            text +=
                "  - name: node-\(index)\n    addresses: [\(addresses(index, dualStack: false))]\n"
                + "    labels: { cell: c\(index / 10), tier: \(tiers[index % 10]) }\n"
        }
        text += "flows:\n"
        for cell in 0..<((nodes + 9) / 10) {
            text +=
                "  - { name: c\(cell)-web-to-app, from: { cell: c\(cell), tier: web }, "
                + "to: { cell: c\(cell), tier: app }, ports: [tcp/8080] }\n"
                + "  - { name: c\(cell)-app-to-db, from: { cell: c\(cell), tier: app }, "
                + "to: { cell: c\(cell), tier: db }, ports: [tcp/5432] }\n"
        }
        return text
    }

    /// One hub and `peers` peers, and one flow between the hub and every peer: 2 × `peers`
    /// channels, all touching the hub (the hub is node 0, the peers `peer-1` ...).
    static func hubAndSpoke(peers: Int) -> String {
        var text = "version: 1\ncluster: bench\ndefaults:\n  cipher: aes-gcm-256\n  rekey: { every: 24h }\nnodes:\n"
        text += "  - name: hub\n    addresses: [\(addresses(0, dualStack: false))]\n    labels: { role: hub }\n"
        for index in 1...max(1, peers) {
            text +=
                "  - name: peer-\(index)\n    addresses: [\(addresses(index, dualStack: false))]\n"
                + "    labels: { role: peer }\n"
        }
        text += "flows:\n  - { name: hub-to-peers, from: { role: hub }, to: { role: peer } }\n"
        return text
    }

    /// Host `host` of 198.18.0.0/15 (0 ..< 131,072).
    static func hostAddress(_ host: Int) -> IPAddress {
        let bytes = [198, UInt8(18 + (host >> 16) & 1), UInt8((host >> 8) & 0xFF), UInt8(host & 0xFF)]
        guard let address = IPAddress(bytes: bytes) else { preconditionFailure("four bytes are an IPv4 address") }
        return address
    }

    /// The spec text of node `index`'s addresses: host `index` of 198.18.0.0/15, and with
    /// `dualStack` also 2001:db8::(index + 1).
    static func addresses(_ index: Int, dualStack: Bool) -> String {
        let v4 = "198.\(18 + index / 65_536).\((index / 256) % 256).\(index % 256)"
        let v6 = "\"2001:db8::\(String(index + 1, radix: 16))\""
        return dualStack ? "\(v4), \(v6)" : v4
    }

    /// `text` (a generated spec) with each node in `ports` behind its agent on loopback:
    /// `endpoint: "agent:127.0.0.1:PORT"` under its name.
    static func withEndpoints(_ text: String, ports: [String: Int]) -> String {
        var lines: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lines.append(String(line))
            guard line.hasPrefix("  - name: "), let port = ports[String(line.dropFirst("  - name: ".count))] else {
                continue
            }
            lines.append("    endpoint: \"agent:127.0.0.1:\(port)\"")
        }
        return lines.joined(separator: "\n")
    }

    /// Writes `text` to a fresh temporary file; the caller removes its directory.
    static func write(_ text: String) throws -> (file: String, directory: URL) {
        let directory = try temporaryDirectory()
        let file = directory.appendingPathComponent("fleet.yaml").path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return (file, directory)
    }

    /// A fresh temporary directory; the caller removes it.
    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("meshward-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }
}
