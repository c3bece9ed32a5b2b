import Foundation

/// Generated specs for benchmarks: addresses from 198.18.0.0/15 and 2001:db8::/32 only.
enum FleetGenerator {
    /// `nodes` nodes in four tiers and one flow from every node to every node.
    static func fullMesh(nodes: Int, dualStack: Bool = false) -> String {
        let tiers = ["web", "app", "db", "cache"]
        var text = "version: 1\ncluster: bench\ndefaults:\n  cipher: aes-gcm-256\n  rekey: { every: 24h }\nnodes:\n"
        for index in 0..<nodes {
            text += "  - name: node-\(index)\n    addresses: [\(addresses(index, dualStack: dualStack))]\n"
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
            text += "  - name: node-\(index)\n    addresses: [\(addresses(index, dualStack: dualStack))]\n"
                + "    labels: { tier: \(tiers[index % 3]) }\n"
        }
        text += """
            flows:
              - { name: web-to-app, from: { tier: web }, to: { tier: app }, ports: [tcp/8080] }
              - { name: app-to-db, from: { tier: app }, to: { tier: db }, ports: [tcp/5432] }

            """
        return text
    }

    static func addresses(_ index: Int, dualStack: Bool) -> String {
        let v4 = "198.\(18 + index / 65_536).\((index / 256) % 256).\(index % 256)"
        let v6 = "\"2001:db8::\(String(index + 1, radix: 16))\""
        return dualStack ? "\(v4), \(v6)" : v4
    }

    /// Writes `text` to a fresh temporary file; the caller removes its directory.
    static func write(_ text: String) throws -> (file: String, directory: URL) {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("meshward-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("fleet.yaml").path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return (file, directory)
    }
}
