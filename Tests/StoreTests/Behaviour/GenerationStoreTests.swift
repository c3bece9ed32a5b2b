import Foundation
import MeshwardCore
import Testing

@testable import Store

/// The `GenerationStore` role, run against every conformer: generations and their sealed keys
/// round-trip, batches are all or none, immutable fields stay immutable.
@Suite("Store roles: channels and generations")
struct GenerationStoreTests {
    @Test(
        "an issued generation loads back exactly, key included, through another connection",
        arguments: StoreConformer.all)
    func issuedGenerationLoadsBack(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let id = channel("web-1", "app-1")
        let generation = try await test.store.issue(id, cipher: .aesCBCHMACSHA256)

        #expect(generation.number == 1)
        #expect(generation.state == .pending)
        #expect(generation.spi.rawValue >= SPI.minimumIssued)
        #expect(generation.key.count == Cipher.aesCBCHMACSHA256.keyLength)
        #expect(generation.createdAt == t0)

        // Another connection unseals what this one sealed: the key is in the database, not in memory.
        let loaded = try await test.connect().loadChannels()
        #expect(loaded.count == 1)
        let record = try #require(loaded[id])
        #expect(record.step == ChannelRecord.initialStep)
        #expect(record.stepChangedAt == t0)
        #expect(record.generations == [generation])
        #expect(record.generations[0].key == generation.key)
    }

    @Test("generations number 1, 2, 3 per channel with fresh keys", arguments: StoreConformer.all)
    func numbersAndKeysAreFresh(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let a = channel("a", "b")
        let b = channel("b", "a")
        let first = try await test.store.issue(a)
        let second = try await test.store.issue(a)
        let other = try await test.store.issue(b, destination: "198.18.1.1")
        let third = try await test.store.issue(a)

        #expect([first.number, second.number, third.number] as [Int] == [1, 2, 3])
        #expect(other.number == 1)
        #expect(Set([first.key, second.key, third.key, other.key]).count == 4)
        let loaded = try await test.store.loadChannels()
        #expect(loaded[a]?.generations.map(\.number) == [1, 2, 3])
        #expect(loaded[b]?.generations.map(\.number) == [1])
    }

    @Test("IPv6 channels and every cipher round-trip", arguments: StoreConformer.all)
    func everyCipherAndFamily(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        var issued: [Generation] = []
        for (index, cipher) in Cipher.allCases.enumerated() {
            let id = channel("n\(index)", "m\(index)", .ipv6)
            issued.append(
                try await test.store.issueGenerations(
                    [
                        GenerationRequest(
                            channel: id, cipher: cipher, source: address("2001:db8::1"),
                            destination: address("2001:db8::\(index + 2)"))
                    ], now: t0)[0])
        }
        let loaded = try await test.store.loadChannels()
        for generation in issued {
            #expect(loaded[generation.channel]?.generations == [generation])
            #expect(generation.key.count == generation.cipher.keyLength)
        }
    }

    @Test("addresses of the wrong family are refused", arguments: StoreConformer.all)
    func wrongFamilyRefused(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let error = await #expect(throws: StoreError.self) {
            try await test.store.issueGenerations(
                [
                    GenerationRequest(
                        channel: channel("a", "b", .ipv6), cipher: .aesGCM128, source: address("198.18.0.1"),
                        destination: address("2001:db8::1"))
                ], now: t0)
        }
        #expect(error?.description.contains("a->b/ipv6") == true)
        #expect(try await test.store.loadChannels().isEmpty)
    }

    @Test("update writes steps, states and timestamps in one transaction", arguments: StoreConformer.all)
    func updateRoundTrips(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let a = channel("a", "b")
        let b = channel("c", "d")
        _ = try await test.store.issue(a)
        _ = try await test.store.issue(a)
        _ = try await test.store.issue(b, destination: "198.18.1.4")

        var records = try await test.store.loadChannels()
        var recordA = try #require(records[a])
        recordA.step = .rekeying
        recordA.stepChangedAt = t0.addingTimeInterval(10)
        recordA.generations[0].state = .retiring
        recordA.generations[0].activatedAt = t0.addingTimeInterval(1)
        recordA.generations[0].supersededAt = t0.addingTimeInterval(10)
        recordA.generations[1].state = .active
        recordA.generations[1].activatedAt = t0.addingTimeInterval(10)
        var recordB = try #require(records[b])
        recordB.step = .established
        recordB.generations[0].state = .active
        try await test.store.update([recordA, recordB])

        records = try await test.connect().loadChannels()
        #expect(records[a] == recordA)
        #expect(records[b] == recordB)
        #expect(records[a]?.active?.number == 2)
    }

    @Test("a failing update writes nothing", arguments: StoreConformer.all)
    func failingUpdateIsAtomic(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let a = channel("a", "b")
        _ = try await test.store.issue(a)
        var record = try #require(try await test.store.loadChannels()[a])
        record.step = .established
        let stranger = ChannelRecord(id: channel("x", "y"), step: .established, stepChangedAt: t0, generations: [])

        await #expect(throws: StoreError.self) { try await test.store.update([record, stranger]) }
        #expect(try await test.store.loadChannels()[a]?.step == ChannelRecord.initialStep)
    }

    @Test("retired generations may be pruned; live ones may not", arguments: StoreConformer.all)
    func pruning(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let a = channel("a", "b")
        _ = try await test.store.issue(a)
        _ = try await test.store.issue(a)
        var record = try #require(try await test.store.loadChannels()[a])

        var dropped = record
        dropped.generations.removeFirst()
        let error = await #expect(throws: StoreError.self) { try await test.store.update([dropped]) }
        #expect(error?.description.contains("only retired generations may be pruned") == true)

        record.generations[0].state = .retired
        record.generations[0].retiredAt = t0
        try await test.store.update([record])
        record.generations.removeFirst()
        try await test.store.update([record])
        #expect(try await test.store.loadChannels()[a]?.generations.map(\.number) == [2])

        // Numbers keep counting after pruning.
        #expect(try await test.store.issue(a).number == 3)
    }

    @Test("an update cannot change an SPI or invent a generation", arguments: StoreConformer.all)
    func immutableFieldsAreChecked(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let a = channel("a", "b")
        let generation = try await test.store.issue(a)
        let record = try #require(try await test.store.loadChannels()[a])

        var forged = record
        forged.generations[0] = Generation(
            channel: a, number: 1, spi: SPI(generation.spi.rawValue &+ 1), cipher: generation.cipher,
            key: generation.key, source: generation.source, destination: generation.destination,
            createdAt: generation.createdAt, state: .active)
        await #expect(throws: StoreError.self) { try await test.store.update([forged]) }

        var invented = record
        invented.generations.append(
            Generation(
                channel: a, number: 9, spi: SPI(0x1234), cipher: .aesGCM128, key: generation.key,
                source: generation.source, destination: generation.destination, createdAt: t0, state: .pending))
        await #expect(throws: StoreError.self) { try await test.store.update([invented]) }
        #expect(try await test.store.loadChannels()[a] == record)
    }

    @Test("a batch of generations is issued in one transaction", arguments: StoreConformer.all)
    func batchIssue(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let requests = (0..<50).map { index in
            GenerationRequest(
                channel: channel("n\(index)", "hub"), cipher: .chacha20Poly1305,
                source: address("198.18.2.\(index + 1)"),
                destination: address("198.18.1.1"))
        }
        let issued = try await test.store.issueGenerations(requests, now: t0)
        #expect(issued.map(\.channel) == requests.map(\.channel))
        #expect(Set(issued.map(\.spi)).count == 50)
        let loaded = try await test.store.loadChannels()
        #expect(loaded.count == 50)
        for generation in issued { #expect(loaded[generation.channel]?.generations == [generation]) }

        // A batch with one bad request issues nothing.
        let bad = [
            GenerationRequest(
                channel: channel("p", "q"), cipher: .aesGCM128, source: address("198.18.0.1"),
                destination: address("198.18.0.2")),
            GenerationRequest(
                channel: channel("q", "p"), cipher: .aesGCM128, source: address("2001:db8::1"),
                destination: address("198.18.0.1")),
        ]
        await #expect(throws: StoreError.self) { try await test.store.issueGenerations(bad, now: t0) }
        #expect(try await test.store.loadChannels().count == 50)
    }

    @Test(
        "removeChannels forgets the channels, skips unknown ones, and a returning channel starts at generation 1",
        arguments: StoreConformer.all)
    func removeChannel(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let a = channel("a", "b")
        let b = channel("b", "a")
        _ = try await test.store.issue(a)
        _ = try await test.store.issue(b, destination: "198.18.1.1")
        try await test.store.removeChannels([a, channel("never", "was")])

        let loaded = try await test.store.loadChannels()
        #expect(Array(loaded.keys) == [b])
        // A channel that comes back starts again at generation 1.
        #expect(try await test.store.issue(a).number == 1)
    }

    @Test(
        "hasChannels is false for a new store and true once a channel has a generation", arguments: StoreConformer.all)
    func hasChannels(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        #expect(try await !test.store.hasChannels())
        _ = try await test.store.issue(channel("web-1", "app-1"))
        #expect(try await test.store.hasChannels())
    }
}
