import Foundation
import MeshwardCore
import MeshwardTestSupport
import Testing

@testable import Store

@Suite("Crash consistency")
struct CrashConsistencyTests {
    /// Fixed so that a failure can be replayed; printed by the test.
    static let seed: UInt64 = 0x4d57_5354_4f52_4531
    static let kills = 20

    @Test("a writer killed at random instants loses nothing it reported committed")
    func killedWriter() async throws {
        let writer = try #require(builtProduct("store-crash-writer"), "build store-crash-writer (swift build)")
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = directory + "/state"
        var random = SeededRandom(seed: Self.seed)
        print("crash consistency: seed 0x\(String(Self.seed, radix: 16)), \(Self.kills) kills")

        var committedTotal = 0
        for round in 1...Self.kills {
            let child = try ChildProcess(writer, ["write", state])
            // Let it get going (its first commit printed), then kill it at a random instant.
            _ = await child.printed("committed", within: 20)
            try await Task.sleep(for: .microseconds(random.next() % 150_000))
            kill(child.processIdentifier, SIGKILL)
            let exit = await child.waitForExit()
            #expect(exit.status == SIGKILL, "round \(round): the writer ended on its own: \(exit.output.suffix(500))")

            // Only whole lines count: the last one may have been cut by the kill.
            var lines = exit.output.split(separator: "\n", omittingEmptySubsequences: false)
            lines.removeLast()
            let committed = lines.filter { $0.hasPrefix("committed ") }.map { $0.split(separator: " ") }
            let activated = lines.filter { $0.hasPrefix("activated ") }.map { $0.split(separator: " ") }
            #expect(!committed.isEmpty, "round \(round): the writer reported no commit")
            committedTotal += committed.count

            let store = try StateStore.open(directory: state, logger: testLogger)
            try store.verifyIntegrity()
            let channels = try store.loadChannels()
            for fields in committed {
                let id = channel(String(fields[1]), String(fields[2]))
                let generation = channels[id]?.generation(Int(fields[3]) ?? -1)
                #expect(
                    generation?.key.fingerprint == String(fields[4]),
                    "round \(round): committed generation \(fields[3]) of \(id) is missing or has another key")
            }
            for fields in activated {
                let id = channel(String(fields[1]), String(fields[2]))
                #expect(
                    channels[id]?.generation(Int(fields[3]) ?? -1)?.state == .active,
                    "round \(round): activated generation \(fields[3]) of \(id) is not active")
            }
        }
        print("crash consistency: \(committedTotal) reported commits checked after \(Self.kills) kills")
    }
}
