import Foundation
import Testing

/// The plan as people read it: one line per channel with `+`, `~` or `-`, the reason and what
/// changes, then the settings and the counts; kernel operations only with `--verbose`.
@Suite("Readable plan", .serialized)
struct ReadablePlanTests {
    static let spec = """
        version: 1
        cluster: read
        defaults: { drain: 1s, cipher: aes-gcm-256 }
        nodes:
          - { name: alpha, addresses: [198.18.8.1] }
          - { name: beta, addresses: [198.18.8.2] }
          - { name: delta, addresses: [198.18.8.3] }
        flows:
          - { name: ab, from: { name: alpha }, to: { name: beta }, ports: [tcp/8080] }
          - { name: bd, from: { name: beta }, to: { name: delta } }

        """

    @Test("from empty: one + line per channel and the counts; stages only with --verbose")
    func fromEmpty() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.spec)
        let plain = try await cli.run("plan", spec)
        let lines = plain.output.split(separator: "\n").map(String.init)
        #expect(
            lines == [
                "cluster read (revision \(lines.first?.dropFirst(23).prefix(12) ?? ""))",
                "  + alpha->beta/ipv4", "  + beta->alpha/ipv4", "  + beta->delta/ipv4", "  + delta->beta/ipv4",
                "plan: 4 channels to create, 0 to rekey, 0 to update, 0 to remove; 20 kernel operations in 4 stages",
            ], "\(plain.output)")
        #expect(!plain.output.contains("stage 1"))

        let verbose = try await cli.run("plan", spec, "--verbose")
        #expect(verbose.output.contains("\nstage 1\n  alpha: add-sa "), "\(verbose.output)")
        #expect(verbose.output.contains("spi new-"))

        let (_, document) = try await cli.json("plan", spec)
        let changes = document["channel_changes"] as? [[String: Any]] ?? []
        #expect(changes.map { $0["action"] as? String } == Array(repeating: "create", count: 4))
        #expect((document["stages"] as? [Any])?.count == 4, "JSON always has the operations")
    }

    @Test(
        "plan of 240 channels from empty counts them per flow and per node, --verbose lists each, and the JSON names every channel's nodes and flows"
    )
    func wideChangeCounted() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let nodes = (1...16).map { "  - { name: n\($0), addresses: [198.18.9.\($0)], labels: { tier: mesh } }" }
        let spec = try MeshwardCLI.writeSpec(
            """
            version: 1
            cluster: wide
            nodes:
            \(nodes.joined(separator: "\n"))
            flows:
              - { name: mesh, from: { tier: mesh }, to: { tier: mesh } }

            """)
        let plain = try await cli.run("plan", spec)
        let lines = plain.output.split(separator: "\n").map(String.init)
        #expect(plain.status == 0, "\(plain.output)")
        #expect(
            lines.contains(
                "  240 channels change (more than 200), counted per flow and per node; --verbose lists each channel, the JSON always does"
            ), "\(plain.output)")
        #expect(lines.contains("  mesh: 240 to create"), "\(plain.output)")
        #expect(lines.contains("  n7: 30 to create"), "\(plain.output)")
        #expect(!lines.contains("  + n1->n2/ipv4"), "\(plain.output)")
        #expect(lines.count < 40, "\(plain.output)")

        let verbose = try await cli.run("plan", spec, "--verbose")
        let listed = verbose.output.split(separator: "\n").filter { $0.hasPrefix("  + ") }
        #expect(listed.count == 240, "\(verbose.output)")
        #expect(Set(listed).count == 240 && listed.contains("  + n1->n2/ipv4"), "\(verbose.output)")

        let (_, document) = try await cli.json("plan", spec)
        let changes = document["channel_changes"] as? [[String: Any]] ?? []
        #expect(changes.count == 240)
        let first = changes.first { $0["channel"] as? String == "n1->n2/ipv4" }
        #expect(first?["from"] as? String == "n1")
        #expect(first?["to"] as? String == "n2")
        #expect(first?["flows"] as? [String] == ["mesh"])
    }

    @Test("a cipher change, an added port and a removed flow show as ~ rekey, ~ update and - remove")
    func changes() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try MeshwardCLI.writeSpec(Self.spec)).status == 0)
        let edited = try MeshwardCLI.writeSpec(
            Self.spec
                .replacingOccurrences(of: "ports: [tcp/8080] }", with: "ports: [tcp/8080, tcp/9090] }")
                .replacingOccurrences(
                    of: "  - { name: bd, from: { name: beta }, to: { name: delta } }\n",
                    with: "  - { name: bd, from: { name: beta }, to: { name: delta }, cipher: chacha20-poly1305 }\n"
                ))
        let text = try await cli.run("plan", edited).output
        #expect(
            text.contains(
                "  ~ alpha->beta/ipv4  update: traffic tcp dport 8080 → tcp dport 8080, tcp dport 9090"),
            "\(text)")
        #expect(
            text.contains("  ~ beta->delta/ipv4  rekey (cipher-changed): cipher aes-gcm-256 → chacha20-poly1305"),
            "\(text)")
        #expect(text.contains("0 channels to create, 2 to rekey, 2 to update, 0 to remove"), "\(text)")

        let removed = try MeshwardCLI.writeSpec(
            Self.spec.replacingOccurrences(
                of: "  - { name: bd, from: { name: beta }, to: { name: delta } }\n", with: ""))
        let removal = try await cli.run("plan", removed).output
        #expect(removal.contains("  - beta->delta/ipv4  remove (not in the spec)"), "\(removal)")
        #expect(removal.contains("  - delta->beta/ipv4  remove (not in the spec)"), "\(removal)")
        let (_, document) = try await cli.json("plan", removed)
        let actions = (document["channel_changes"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
        #expect(actions == ["remove", "remove"], "\(actions)")
    }
}
