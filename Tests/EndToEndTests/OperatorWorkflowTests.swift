import Foundation
import Logging
import MeshwardCore
import Store
import Testing

/// The commands as an operator and a pipeline use them, on the simulated fleet.
@Suite("Operator workflow", .serialized)
struct OperatorWorkflowTests {
    @Test("apply converges, plan then shows no changes, a second apply makes no kernel operation")
    func applyIsIdempotent() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = MeshwardCLI.example("three-tier.yaml")

        let first = try await cli.run("apply", spec)
        #expect(first.status == 0, "\(first.error)")
        #expect(first.output.contains("converged"))

        let plan = try await cli.run("plan", spec, "--detailed-exitcode")
        #expect(plan.status == 0, "\(plan.output)\(plan.error)")
        #expect(plan.output.contains("no changes"))

        let journalBefore = try journalCount(cli)
        #expect(journalBefore > 0)
        let (status, second) = try await cli.json("apply", spec)
        #expect(status == 0)
        #expect(second["operations"] as? Int == 0)
        #expect(second["outcome"] as? String == "converged")
        #expect(try journalCount(cli) == journalBefore, "the second apply sent kernel operations")
    }

    @Test("plan --detailed-exitcode exits 2 when changes are pending and shows them per stage without keys")
    func planShowsPendingChanges() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let (status, document) = try await cli.json("plan", MeshwardCLI.example("minimal.yaml"), "--detailed-exitcode")
        #expect(status == 2)
        #expect(document["changes"] as? Bool == true)
        let stages = document["stages"] as? [[String: Any]] ?? []
        #expect(stages.count == 4, "receiver, sender SA, sender policy, enforcement")
        #expect(
            !FileManager.default.fileExists(atPath: cli.stateDirectory.appendingPathComponent("state.sqlite").path),
            "plan wrote state")
    }

    @Test("rekey rotates the selected channels and history records each apply")
    func rekeyAndHistory() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = MeshwardCLI.example("minimal.yaml")
        #expect(try await cli.run("apply", spec).status == 0)
        let (_, before) = try await cli.json("status")
        let (status, rekey) = try await cli.json("rekey", spec, "--all")
        #expect(status == 0)
        let issued = rekey["generations_issued"] as? [[String: Any]] ?? []
        #expect(issued.count == 2)
        #expect(issued.allSatisfy { $0["reason"] as? String == "requested" })
        let (_, after) = try await cli.json("status")
        let spis = { (document: [String: Any]) in
            ((document["channels"] as? [[String: Any]]) ?? []).compactMap { $0["spi"] as? String }
        }
        #expect(Set(spis(before)).isDisjoint(with: spis(after)), "SPIs were reused")
        #expect(((after["channels"] as? [[String: Any]]) ?? []).allSatisfy { $0["generation"] as? Int == 2 })
        let (_, history) = try await cli.json("history")
        #expect((history["revisions"] as? [Any])?.count == 2)
    }

    @Test("an invalid spec exits 1 with located diagnostics and changes nothing")
    func invalidSpec() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let path = try MeshwardCLI.writeSpec(
            "version: 1\ncluster: x\nnodes:\n  - name: a\n    adresses: [198.18.0.1]\n")
        let result = try await cli.run("apply", path)
        #expect(result.status == 1)
        #expect(result.error.contains("\(path):5:5:"), "\(result.error)")
        #expect(!FileManager.default.fileExists(atPath: cli.stateDirectory.path))
    }

    @Test("a node that cannot be reached fails apply with its name; the rest converges")
    func unreachableNode() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let path = try MeshwardCLI.writeSpec(
            """
            version: 1
            cluster: lab
            nodes:
              - { name: a, addresses: [198.18.0.1] }
              - { name: b, addresses: [198.18.0.2] }
              - { name: c, addresses: [198.18.0.3], endpoint: "netns:meshward-no-such-namespace" }
            flows:
              - { name: ab, from: { name: a }, to: { name: b } }
              - { name: bc, from: { name: b }, to: { name: c } }
            """)
        let (status, document) = try await cli.json("apply", path)
        #expect(status == 1)
        #expect(document["outcome"] as? String == "blocked")
        let unreachable = document["unreachable"] as? [[String: Any]] ?? []
        #expect(unreachable.map { $0["node"] as? String } == ["c"])
        let (_, state) = try await cli.json("status")
        let channels = state["channels"] as? [[String: Any]] ?? []
        let ab = channels.filter { ($0["channel"] as? String)?.hasPrefix("a->b") == true }
        #expect(ab.first?["step"] as? String == "established")
    }

    private func journalCount(_ cli: MeshwardCLI) throws -> Int {
        let store = try StateStore.open(
            directory: cli.stateDirectory.path,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        return try store.journal(limit: nil, node: nil).count
    }
}
