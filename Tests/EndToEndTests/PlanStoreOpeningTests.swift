import Foundation
import Testing

/// `plan` opens the Store while it loads the spec (`openStoreAhead`): the spec's own errors
/// still come first, and a Store that cannot be opened is still reported, saying where.
@Suite("Plan opens the Store beside the spec", .serialized)
struct PlanStoreOpeningTests {
    static let spec = """
        version: 1
        cluster: opening
        nodes:
          - { name: alpha, addresses: [198.18.11.1] }
          - { name: beta, addresses: [198.18.11.2] }
        flows:
          - { name: ab, from: { name: alpha }, to: { name: beta } }

        """

    /// Applies the spec, then overwrites the state database with bytes that are no database.
    static func damagedStore(_ cli: MeshwardCLI) async throws -> String {
        let spec = try MeshwardCLI.writeSpec(Self.spec)
        let applied = try await cli.run("apply", spec)
        #expect(applied.status == 0, "\(applied.output)\(applied.error)")
        let database = cli.stateDirectory.appendingPathComponent("state.sqlite").path
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) }
        try Data(repeating: 0x5a, count: 64 * 1_024).write(to: URL(fileURLWithPath: database))
        return spec
    }

    @Test("a malformed spec on a damaged Store: the spec's error is reported, not the Store's")
    func specErrorComesFirst() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        _ = try await Self.damagedStore(cli)
        let malformed = try MeshwardCLI.writeSpec("version: 1\ncluster: opening\nnodes: [ { name: alpha\n")
        let planned = try await cli.run("plan", malformed)
        #expect(planned.status == 1, "\(planned.output)\(planned.error)")
        #expect(planned.error.contains(malformed), "the error names the spec file: \(planned.error)")
        #expect(!planned.error.contains("state database"), "\(planned.error)")
    }

    @Test("a valid spec on a damaged Store: the Store's error is reported, naming its file")
    func damagedStoreReported() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try await Self.damagedStore(cli)
        let planned = try await cli.run("plan", spec)
        #expect(planned.status == 1, "\(planned.output)\(planned.error)")
        #expect(planned.error.contains("state.sqlite"), "\(planned.error)")
        #expect(planned.output.isEmpty, "no plan is printed: \(planned.output)")
    }
}
