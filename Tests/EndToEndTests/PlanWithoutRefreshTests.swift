import Foundation
import Testing

/// `plan --refresh=false`: the spec against what the Store's records and the spec of the last
/// apply say each kernel holds, reading no kernel, and saying so.
@Suite("Plan without reading the kernels", .serialized)
struct PlanWithoutRefreshTests {
    static func spec(port: String = "tcp/8080") -> String {
        """
        version: 1
        cluster: unread
        defaults: { drain: 1s, cipher: aes-gcm-256 }
        nodes:
          - { name: alpha, addresses: [198.18.10.1] }
          - { name: beta, addresses: [198.18.10.2] }
          - { name: delta, addresses: [198.18.10.3] }
        flows:
          - { name: ab, from: { name: alpha }, to: { name: beta }, ports: [\(port)] }
          - { name: bd, from: { name: beta }, to: { name: delta } }

        """
    }

    static let note =
        "kernels not read (--refresh=false): each is taken to hold what the Store's records say it was given"

    /// Every state-directory file that holds the simulated kernels.
    static func removeSimulatedKernels(_ cli: MeshwardCLI) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: cli.stateDirectory.path)
        let fleet = files.filter { $0.hasPrefix("simulated-fleet") }
        #expect(!fleet.isEmpty, "the state directory holds no simulated fleet: \(files)")
        for name in fleet { try FileManager.default.removeItem(at: cli.stateDirectory.appendingPathComponent(name)) }
    }

    @Test("after apply: no changes and the note, even with every simulated kernel gone, which a refreshed plan sees")
    func convergedWithoutReading() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.spec())
        let applied = try await cli.run("apply", spec)
        #expect(applied.status == 0, "\(applied.output)\(applied.error)")

        let unread = try await cli.run("plan", spec, "--refresh=false", "--detailed-exitcode")
        #expect(unread.status == 0, "\(unread.output)\(unread.error)")
        #expect(unread.output.split(separator: "\n").map(String.init).contains(Self.note), "\(unread.output)")
        #expect(unread.output.contains("no changes"), "\(unread.output)")
        let (_, document) = try await cli.json("plan", spec, "--refresh=false")
        #expect(document["kernels_read"] as? Bool == false, "\(document)")
        #expect(document["fleet_fingerprint"] == nil && document["state_fingerprint"] == nil, "\(document)")

        try Self.removeSimulatedKernels(cli)
        let refreshed = try await cli.run("plan", spec, "--detailed-exitcode")
        #expect(refreshed.status == 2, "the kernels are empty now: \(refreshed.output)")
        let stillUnread = try await cli.run("plan", spec, "--refresh=false", "--detailed-exitcode")
        #expect(stillUnread.status == 0, "no kernel was read: \(stillUnread.output)\(stillUnread.error)")
    }

    @Test("a changed port is the same update with and without reading the kernels")
    func portChangeMatchesRefreshedPlan() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try MeshwardCLI.writeSpec(Self.spec())).status == 0)
        let changed = try MeshwardCLI.writeSpec(Self.spec(port: "tcp/9090"))
        let (readStatus, read) = try await cli.json("plan", changed, "--detailed-exitcode")
        let (unreadStatus, unread) = try await cli.json("plan", changed, "--refresh=false", "--detailed-exitcode")
        #expect(readStatus == 2 && unreadStatus == 2)
        let readChanges = read["channel_changes"] as? [[String: Any]] ?? []
        let unreadChanges = unread["channel_changes"] as? [[String: Any]] ?? []
        #expect(readChanges.map { $0["channel"] as? String } == ["alpha->beta/ipv4", "beta->alpha/ipv4"], "\(read)")
        #expect(unreadChanges.map { $0["channel"] as? String } == readChanges.map { $0["channel"] as? String })
        #expect(unreadChanges.map { $0["action"] as? String } == readChanges.map { $0["action"] as? String })
        #expect((unread["summary"] as? [String: Int]) == (read["summary"] as? [String: Int]), "\(unread)")
        #expect(read["kernels_read"] as? Bool == true)
    }

    @Test("from an empty state directory every channel is created, as a refreshed plan says")
    func fromEmptyMatchesRefreshedPlan() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.spec())
        let (_, read) = try await cli.json("plan", spec)
        let (status, unread) = try await cli.json("plan", spec, "--refresh=false")
        #expect(status == 0)
        #expect((unread["summary"] as? [String: Int]) == (read["summary"] as? [String: Int]), "\(unread)")
        #expect((unread["summary"] as? [String: Int])?["channels_created"] == 4)
    }

    @Test("a Store with channels but no recorded spec (only targeted applies) is refused, saying why and what to run")
    func noRecordedSpecRefused() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.spec())
        let targeted = try await cli.run("apply", spec, "--target", "alpha")
        #expect(targeted.status == 0, "\(targeted.output)\(targeted.error)")
        let refused = try await cli.run("plan", spec, "--refresh=false")
        #expect(refused.status == 1)
        #expect(refused.error.contains("holds channels but not the spec that made them"), "\(refused.error)")
        #expect(refused.error.contains("run plan without --refresh=false"), "\(refused.error)")
    }

    @Test("--refresh=false with --out is refused before anything is read")
    func outRefused() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.spec())
        let refused = try await cli.run("plan", spec, "--refresh=false", "--out", cli.stateDirectory.path + "-plan")
        #expect(refused.status != 0)
        #expect(refused.error.contains("--refresh=false reads no kernel"), "\(refused.error)")
        #expect(!FileManager.default.fileExists(atPath: cli.stateDirectory.path))
    }
}
