import Foundation
import KernelSimulator
import Testing

/// `meshward apply` with hostile specs, against a fleet where a valid spec is already applied:
/// each is refused with exit code 1 and a located message, and nothing in the fleet changes.
@Suite("Hostile specs on the command line", .serialized)
struct HostileSpecApplyTests {
    /// The corpus of the DesiredState tests.
    static let corpus = MeshwardCLI.root.appendingPathComponent("Tests/DesiredStateTests/Fixtures/hostile").path

    /// One of each kind: syntax, bytes, resource bombs, types, addresses, compilation, directories.
    static let sample = [
        "syntax-unclosed-flow-sequence.yaml", "syntax-tab-indentation.yaml", "bytes-invalid-utf8.yaml",
        "bytes-nul-in-value.yaml", "empty-file.yaml", "laughs-sequences.yaml", "alias-inside-flow-key.yaml",
        "deep-json-objects.json", "top-duplicate-key.yaml", "version-two.yaml", "duration-overflow.yaml",
        "address-mapped.yaml", "ports-range.yaml", "flow-contradictory-ciphers.yaml", "json-unclosed.json",
        "dir-duplicate-address-across-files", "dir-without-specs",
    ]

    /// What an apply must leave as it was.
    struct FleetSnapshot: Equatable {
        /// Channel, generation and SPI of every channel, from `meshward status --output json`.
        let channels: [String]
        /// The simulated kernels' persisted state, every SA, counter and policy of every node.
        let simulatedFleet: SimulatedFleetState
        let revisions: Int
    }

    @Test("a hostile spec exits 1 with a located message and leaves the kernels and the store unchanged")
    func hostileApplyChangesNothing() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let applied = try await cli.run("apply", MeshwardCLI.example("three-tier.yaml"))
        try #require(applied.status == 0, "\(applied.error)")
        let before = try await snapshot(cli)
        #expect(before.channels.count == 48)

        for name in Self.sample {
            let path = Self.corpus + "/" + name
            let result = try await cli.run("apply", path)
            #expect(result.status == 1, "\(name): exit code \(result.status)")
            let located = result.error.split(separator: "\n").contains { Self.isLocated(String($0), inside: path) }
            #expect(located, "\(name): no located message on standard error:\n\(result.error.prefix(600))")
            #expect(!result.output.contains("converged"), "\(name): \(result.output)")
            #expect(try await snapshot(cli) == before, "\(name) changed the fleet")
        }
    }

    /// True when `line` reads `path:line:column: message`, or names a file inside the directory
    /// `path`, with line and column from 1.
    static func isLocated(_ line: String, inside path: String) -> Bool {
        guard line.hasPrefix(path) else { return false }
        var rest = line.dropFirst(path.count)
        if rest.hasPrefix("/") {
            guard let colon = rest.firstIndex(of: ":") else { return false }
            rest = rest[colon...]
        }
        let parts = rest.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].isEmpty, let row = Int(parts[1]), let column = Int(parts[2]) else {
            return false
        }
        return row > 0 && column > 0 && parts[3].hasPrefix(" ") && parts[3].count > 1
    }

    private func snapshot(_ cli: MeshwardCLI) async throws -> FleetSnapshot {
        let (_, status) = try await cli.json("status")
        let channels = (status["channels"] as? [[String: Any]] ?? []).map { channel in
            "\(channel["channel"] ?? "?") generation \(channel["generation"] ?? "?") spi \(channel["spi"] ?? "?")"
        }
        let (_, history) = try await cli.json("history")
        let fleet = try SimulatedFleet.load(from: cli.stateDirectory.appendingPathComponent("simulated-fleet.sqlite"))
            .state
        return FleetSnapshot(
            channels: channels.sorted(), simulatedFleet: fleet, revisions: (history["revisions"] as? [Any])?.count ?? -1
        )
    }
}
