import Foundation
import MeshwardCore
import Testing

@testable import Store

/// The SQLite conformer's lease between real processes on one state directory.
@Suite("Writer lease between processes")
struct LeaseProcessTests {
    @Test("two processes contend for the lease: exactly one writes")
    func twoProcesses() async throws {
        let writer = try #require(builtProduct("store-crash-writer"), "build store-crash-writer (swift build)")
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = directory + "/state"

        let children = try ["proc-a", "proc-b"].map { holder in
            try ChildProcess(writer, ["lease", state, holder, "3000"])
        }
        var outputs: [ChildProcess.Exit] = []
        for child in children { outputs.append(await child.waitForExit()) }
        let wrote = outputs.filter { $0.output.contains("wrote") }
        let refused = outputs.filter { $0.output.contains("refused:") }
        #expect(wrote.count == 1, "outputs: \(outputs.map(\.output))")
        #expect(refused.count == 1, "outputs: \(outputs.map(\.output))")
        if let winner = wrote.first, let loser = refused.first {
            let winnerName = winner.arguments[2]
            #expect(loser.output.contains("leased to '\(winnerName)'"))
            #expect(loser.status == 3)
            #expect(winner.status == 0)
            let store = try StateStore.open(directory: state, logger: testLogger)
            #expect(try store.loadChannels().keys.map(\.from) == [winnerName])
            #expect(try store.currentLease() == nil)
        }
    }
}
