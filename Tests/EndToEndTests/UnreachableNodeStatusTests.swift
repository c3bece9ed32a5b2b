import Foundation
import Testing

/// `status` on a fleet with a node whose namespace does not exist: the node shows unreachable,
/// with the cause, and the command exits 1 (design.md section 7).
@Suite("Unreachable node status", .serialized)
struct UnreachableNodeStatusTests {
    @Test("status --output json shows a netns node that cannot be reached, with the cause, and exits 1")
    func unreachableNamespace() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let namespace = "meshward-absent-\(UUID().uuidString.prefix(8).lowercased())"
        let path = try MeshwardCLI.writeSpec(
            """
            version: 1
            cluster: lab
            nodes:
              - { name: a, addresses: [198.18.0.1] }
              - { name: b, addresses: [198.18.0.2] }
              - { name: c, addresses: [198.18.0.3], endpoint: "netns:\(namespace)" }
            flows:
              - { name: ab, from: { name: a }, to: { name: b } }
              - { name: bc, from: { name: b }, to: { name: c } }
            """)
        let apply = try await cli.run("apply", path)
        #expect(apply.status == 1, "apply with an unreachable node must fail")

        let (status, document) = try await cli.json("status")
        #expect(status == 1)
        let nodes = document["nodes"] as? [[String: Any]] ?? []
        let c = try #require(nodes.first { $0["name"] as? String == "c" }, "status does not list c: \(document)")
        #expect(c["reachable"] as? Bool == false)
        #expect(c["endpoint"] as? String == "netns:\(namespace)")
        let error = c["error"] as? String ?? ""
        #expect(error.contains(namespace), "the error does not name the namespace: \(error)")
        #expect(
            error.lowercased().contains("no such file") || error.contains("does not exist"),
            "the error does not give the cause: \(error)")
        for name in ["a", "b"] {
            let node = nodes.first { $0["name"] as? String == name }
            #expect(node?["reachable"] as? Bool == true, "\(name) should answer")
            #expect(node?["error"] == nil || node?["error"] is NSNull)
        }

        // The text form says the same and exits 1 too.
        let text = try await cli.run("status")
        #expect(text.status == 1)
        #expect(text.output.contains("c [netns:\(namespace)] UNREACHABLE"), "\(text.output)")
    }
}
