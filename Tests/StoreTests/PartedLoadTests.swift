import Foundation
import GRDB
import MeshwardCore
import Synchronization
import Testing

@testable import Store

/// A large load of the channels, read in parts on several connections at once: the same records
/// as one part, all from one snapshot.
@Suite("Channels loaded in parts")
struct PartedLoadTests {
    /// An on-disk Store of `count` channels, each with one to three generations (and a few
    /// removed, so that the ids have gaps).
    static func filledStore(channels count: Int) throws -> TestStore {
        let test = try TestStore(.onDisk)
        var requests: [GenerationRequest] = []
        for index in 0..<count {
            let id = channel("n\(index % 17)", "m\(index)", index.isMultiple(of: 5) ? .ipv6 : .ipv4)
            let (source, destination) =
                id.family == .ipv4
                ? (address("198.18.1.\(index % 250 + 1)"), address("198.19.2.\(index % 250 + 1)"))
                : (address("2001:db8::\(index + 1)"), address("2001:db8:1::\(index + 1)"))
            for _ in 0...(index % 3) {
                requests.append(
                    GenerationRequest(channel: id, cipher: .aesGCM256, source: source, destination: destination))
            }
        }
        _ = try test.store.issueGenerations(requests, now: Date(timeIntervalSince1970: 1_700_000_000))
        try test.store.removeChannels(
            (0..<count).filter { $0.isMultiple(of: 11) }.map {
                channel("n\($0 % 17)", "m\($0)", $0.isMultiple(of: 5) ? .ipv6 : .ipv4)
            })
        return test
    }

    @Test(
        "a load in 2, 3 and 4 parts, handing on batches of 1, 7 and 8,192 records, holds exactly the records, generations and keys of a load in one",
        arguments: [2, 3, 4], [1, 7, 8_192])
    func partsEqualOnePart(parts: Int, batch: Int) throws {
        let test = try Self.filledStore(channels: 600)
        let whole = try test.store.loadChannels(parts: 1)
        #expect(whole.count == 600 - 55)
        let parted = try test.store.loadChannels(parts: parts, threshold: 1, batch: batch)
        #expect(parted == whole)
        let partedGenerations = parted.values.reduce(0) { $0 + $1.generations.count }
        let wholeGenerations = whole.values.reduce(0) { $0 + $1.generations.count }
        #expect(partedGenerations == wholeGenerations)
    }

    @Test("more parts than channels, and a Store under the threshold, load everything in one part")
    func fewChannels() throws {
        let test = try Self.filledStore(channels: 3)
        let whole = try test.store.loadChannels(parts: 1)
        #expect(try test.store.loadChannels(parts: 4, threshold: 1) == whole)
        #expect(try test.store.loadChannels(parts: 4, threshold: 1_000) == whole)
    }

    @Test(
        "a writer on another connection changing a channel in each part at once: every parted load, handing on batches of 7, sees both changes or neither (200 loads, a burst of commits as each starts)"
    )
    func concurrentWriterSeenWhole() async throws {
        let test = try Self.filledStore(channels: 400)
        let loaded = try test.store.loadChannels(parts: 1)
        let ids = loaded.keys.sorted()
        // The channels with the first and the last row ids fall in different parts.
        let rows = try test.store.read("test") { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT from_node || '>' || to_node || '>' || family FROM channels
                    WHERE id IN ((SELECT MIN(id) FROM channels), (SELECT MAX(id) FROM channels))
                    """)
        }
        let pair = ids.filter { rows.contains("\($0.from)>\($0.to)>\($0.family.rawValue)") }
        #expect(pair.count == 2)
        // Another connection to the same file, as another process would have.
        let other = try StateStore.open(directory: test.stateDirectory, masterKeyPath: nil, logger: testLogger)
        // The writer commits a burst of changes as each load starts (paced by the loads, not by
        // the clock), so that its commits land while the load's parts begin.
        let loadStarting = DispatchSemaphore(value: 0)
        let writerDone = DispatchSemaphore(value: 0)
        let stop = Mutex(false)
        let failure = Mutex<(any Error)?>(nil)
        let writer = Thread {
            defer { writerDone.signal() }
            var flip = false
            while true {
                loadStarting.wait()
                if stop.withLock({ $0 }) { return }
                for _ in 0..<4 {
                    flip.toggle()
                    let step: ChannelStep = flip ? .rekeying : .established
                    do {
                        try other.update(
                            pair.compactMap { loaded[$0] }.map { record in
                                var record = record
                                record.step = step
                                return record
                            })
                    } catch {
                        failure.withLock { $0 = error }
                        return
                    }
                }
            }
        }
        writer.start()
        var mixed = 0
        for _ in 0..<200 {
            loadStarting.signal()
            let records = try test.store.loadChannels(parts: 2, threshold: 1, batch: 7)
            if Set(pair.compactMap { records[$0]?.step }).count != 1 { mixed += 1 }
        }
        stop.withLock { $0 = true }
        loadStarting.signal()
        writerDone.wait()
        #expect(failure.withLock { $0 } == nil, "the writer failed: \(String(describing: failure.withLock { $0 }))")
        #expect(mixed == 0, "\(mixed) of 200 loads saw one channel's change without the other's")
    }
}
