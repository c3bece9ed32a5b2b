import Foundation
import MeshwardCore
import Testing

@testable import Store

@Suite("Keys at rest")
struct KeyAtRestTests {
    @Test("no key bytes appear in the database file or its WAL")
    func noPlaintextKeys() async throws {
        let test = try TestStore(.onDisk)
        var keys: [KeyMaterial] = []
        let requests = (0..<200).map { index in
            GenerationRequest(
                channel: channel("scan-node-\(index)", "hub"), cipher: Cipher.allCases[index % 4],
                source: address("198.18.2.1"), destination: address("198.18.1.1"))
        }
        keys += try test.store.issueGenerations(requests, now: t0).map(\.key)
        for index in 0..<20 { keys.append(try await test.store.issue(channel("single-\(index)", "hub")).key) }
        // Loading unseals every key; nothing of that may reach the files either.
        #expect(try test.store.loadChannels().count == 220)

        // The store stays open, so the WAL still holds the recent transactions.
        let database = try Data(contentsOf: URL(fileURLWithPath: test.stateDirectory + "/state.sqlite"))
        let wal = try Data(contentsOf: URL(fileURLWithPath: test.stateDirectory + "/state.sqlite-wal"))
        #expect(wal.count > 0)
        let files = database + wal

        // The scan can see what is really there: the channel names are stored in clear.
        #expect(files.range(of: Data("scan-node-199".utf8)) != nil)
        for key in keys {
            // Any 8 consecutive bytes of a key would be a leak.
            for start in stride(from: 0, through: key.count - 8, by: 4) {
                let window = Data(key.bytes[start..<(start + 8)])
                #expect(files.range(of: window) == nil, "8 bytes of a key found at rest")
            }
        }
    }

    @Test("keys never print")
    func keysNeverPrint() async throws {
        let test = try TestStore(.inMemory)
        let generation = try await test.store.issue(channel("a", "b"))
        let hex = generation.key.bytes.map { String(format: "%02x", $0) }.joined()
        for text in ["\(generation)", String(reflecting: generation), "\(try test.store.loadChannels())"] {
            #expect(!text.contains(hex))
            #expect(text.contains("<redacted>"))
        }
    }
}
