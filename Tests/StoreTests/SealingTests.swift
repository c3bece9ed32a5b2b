import Foundation
import GRDB
import MeshwardCore
import Testing

@testable import Store

@Suite("Key sealing")
struct SealingTests {
    @Test("a sealed key copied to another row does not open", arguments: StoreKind.allCases)
    func movedKeyFails(kind: StoreKind) async throws {
        let test = try TestStore(kind)
        let victim = channel("a", "b")
        let thief = channel("c", "d")
        _ = try await test.store.issue(victim)
        _ = try await test.store.issue(thief, destination: "198.18.1.4")
        try test.store.write("tamper") { db in
            try db.execute(sql: "DROP TRIGGER generations_are_immutable")
            try db.execute(
                sql: """
                    UPDATE generations SET
                        nonce = (SELECT nonce FROM generations g JOIN channels c ON c.id = g.channel_id
                                 WHERE c.from_node = 'a'),
                        sealed_key = (SELECT sealed_key FROM generations g JOIN channels c ON c.id = g.channel_id
                                      WHERE c.from_node = 'a')
                    WHERE channel_id = (SELECT id FROM channels WHERE from_node = 'c')
                    """)
        }
        let error = #expect(throws: StoreError.self) { try test.store.loadChannels() }
        guard case .sealedKeyInvalid(let channel, let generation) = error else {
            Issue.record("expected sealedKeyInvalid, got \(String(describing: error))")
            return
        }
        #expect(channel == thief)
        #expect(generation == 1)
        #expect(error?.description.contains("c->d/ipv4 generation 1") == true)
    }

    @Test("a key moved to another generation of the same channel does not open", arguments: StoreKind.allCases)
    func movedAcrossGenerationsFails(kind: StoreKind) async throws {
        let test = try TestStore(kind)
        let a = channel("a", "b")
        _ = try await test.store.issue(a)
        _ = try await test.store.issue(a)
        try test.store.write("tamper") { db in
            try db.execute(sql: "DROP TRIGGER generations_are_immutable")
            try db.execute(
                sql: """
                    UPDATE generations SET
                        nonce = (SELECT nonce FROM generations WHERE number = 1),
                        sealed_key = (SELECT sealed_key FROM generations WHERE number = 1)
                    WHERE number = 2
                    """)
        }
        let error = #expect(throws: StoreError.self) { try test.store.loadChannels() }
        guard case .sealedKeyInvalid(_, 2) = error else {
            Issue.record("expected sealedKeyInvalid for generation 2, got \(String(describing: error))")
            return
        }
    }

    @Test("the database refuses to change a key or SPI in place", arguments: StoreKind.allCases)
    func keysAreImmutable(kind: StoreKind) async throws {
        let test = try TestStore(kind)
        _ = try await test.store.issue(channel("a", "b"))
        #expect(throws: (any Error).self) {
            try test.store.write("tamper") { db in try db.execute(sql: "UPDATE generations SET spi = spi + 1") }
        }
    }

    @Test("a wrong master key is refused at open, naming the key file")
    func wrongMasterKey() async throws {
        let test = try TestStore(.onDisk)
        let original = try await test.store.issue(channel("a", "b"))
        let otherKey = test.directory + "/other.key"
        _ = FileManager.default.createFile(
            atPath: otherKey, contents: Data(try SecureRandom.bytes(count: 32)), attributes: [.posixPermissions: 0o600])

        let error = #expect(throws: StoreError.self) {
            try StateStore.open(directory: test.stateDirectory, masterKeyPath: otherKey, logger: testLogger)
        }
        guard case .masterKeyMismatch(let path) = error else {
            Issue.record("expected masterKeyMismatch, got \(String(describing: error))")
            return
        }
        #expect(path == otherKey)
        #expect(error?.description.contains("does not open the keys") == true)

        // The right key still opens everything.
        let reopened = try StateStore.open(directory: test.stateDirectory, logger: testLogger)
        #expect(try reopened.loadChannels()[original.channel]?.generations == [original])
    }

    @Test("a missing master key is refused while sealed keys exist")
    func missingMasterKey() async throws {
        let test = try TestStore(.onDisk)
        _ = try await test.store.issue(channel("a", "b"))
        try FileManager.default.removeItem(atPath: test.stateDirectory + "/master.key")

        let error = #expect(throws: StoreError.self) {
            try StateStore.open(directory: test.stateDirectory, logger: testLogger)
        }
        guard case .masterKeyMissing = error else {
            Issue.record("expected masterKeyMissing, got \(String(describing: error))")
            return
        }
        #expect(!FileManager.default.fileExists(atPath: test.stateDirectory + "/master.key"))
        // An operator-named key file is never created.
        #expect(throws: StoreError.self) {
            try StateStore.open(
                directory: test.directory + "/fresh", masterKeyPath: test.directory + "/absent.key", logger: testLogger)
        }
    }

    @Test("a master key file of the wrong size is refused")
    func truncatedMasterKey() throws {
        let test = try TestStore(.onDisk)
        let keyPath = test.stateDirectory + "/master.key"
        let truncated = try Data(contentsOf: URL(fileURLWithPath: keyPath)).prefix(16)
        try truncated.write(to: URL(fileURLWithPath: keyPath))
        let error = #expect(throws: StoreError.self) {
            try StateStore.open(directory: test.stateDirectory, logger: testLogger)
        }
        #expect(error?.description.contains("holds 16 bytes") == true)
    }

    @Test("an in-memory store accepts only 32-byte master keys")
    func masterKeyLength() throws {
        #expect(throws: StoreError.self) {
            try StateStore.inMemory(masterKey: KeyMaterial(bytes: [1, 2, 3]), logger: testLogger)
        }
    }

    @Test("sealing round-trips and authenticates the associated data")
    func sealerRoundTrip() throws {
        let cipher = try AESGCMKeySealer(masterKey: try KeyMaterial.random(count: 32)).makeCipher()
        let plaintext = try SecureRandom.bytes(count: 36)
        let sealed = try cipher.seal(plaintext, associatedData: [1, 2, 3])
        let again = try cipher.seal(plaintext, associatedData: [1, 2, 3])
        #expect(sealed.nonce != again.nonce)
        #expect(sealed.ciphertext.count == 36 + 16)

        func open(_ sealed: SealedKey, _ ad: [UInt8]) -> [UInt8]? {
            sealed.nonce.withUnsafeBytes { n in
                sealed.ciphertext.withUnsafeBytes { c in
                    ad.withUnsafeBytes { cipher.open(nonce: n, ciphertext: c, associatedData: $0) }
                }
            }
        }
        #expect(open(sealed, [1, 2, 3]) == plaintext)
        #expect(open(sealed, [1, 2, 4]) == nil)
        var flipped = sealed
        flipped.ciphertext[0] ^= 1
        #expect(open(flipped, [1, 2, 3]) == nil)
    }
}
