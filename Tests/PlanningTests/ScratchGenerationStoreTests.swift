import Foundation
import MeshwardCore
import Store
import Testing

@testable import Reconciler

/// The rehearsal's store keeps updates and removals as a log applied at its next read: every
/// read sees them, in the order they were made.
@Suite("Scratch generation store")
struct ScratchGenerationStoreTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let ab = ChannelID(from: "a", to: "b", family: .ipv4)
    static let cd = ChannelID(from: "c", to: "d", family: .ipv4)

    static func request(_ channel: ChannelID) -> GenerationRequest {
        GenerationRequest(
            channel: channel, cipher: .aesGCM256, source: IPAddress("198.18.0.1")!,
            destination: IPAddress("198.18.0.2")!)
    }

    @Test("a generation issued after an update is numbered after the updated record's generations")
    func issueAfterUpdateNumbersFromTheUpdate() throws {
        let store = ScratchGenerationStore(channels: [:])
        let first = try store.issueGenerations([Self.request(Self.ab)], now: Self.t0)[0]
        #expect(first.number == 1)
        let renumbered = Generation(
            channel: first.channel, number: 7, spi: first.spi, cipher: first.cipher, key: first.key,
            source: first.source, destination: first.destination, createdAt: Self.t0, state: .active)
        try store.update([
            ChannelRecord(id: Self.ab, step: .established, stepChangedAt: Self.t0, generations: [renumbered])
        ])
        let next = try store.issueGenerations([Self.request(Self.ab)], now: Self.t0)[0]
        #expect(next.number == 8)
        #expect(try store.loadChannels()[Self.ab]?.generations.map(\.number) == [7, 8])
        #expect(try store.loadChannels()[Self.ab]?.step == .established)
    }

    @Test("updates and removals apply in the order they were made, whatever is read next")
    func updatesAndRemovalsApplyInOrder() throws {
        let store = ScratchGenerationStore(channels: [:])
        let generations = try store.issueGenerations([Self.request(Self.ab), Self.request(Self.cd)], now: Self.t0)
        let ab = ChannelRecord(id: Self.ab, step: .established, stepChangedAt: Self.t0, generations: [generations[0]])
        let cd = ChannelRecord(id: Self.cd, step: .removing, stepChangedAt: Self.t0, generations: [generations[1]])
        // Removed, then written again: present. Written, then removed: gone.
        try store.removeChannels([Self.ab])
        try store.update([ab, cd])
        try store.removeChannels([Self.cd])
        #expect(try store.hasChannels())
        let loaded = try store.loadChannels()
        #expect(loaded == [Self.ab: ab])
        // A channel removed and then issued a generation starts again at 1.
        try store.removeChannels([Self.ab])
        #expect(!(try store.hasChannels()))
        #expect(try store.issueGenerations([Self.request(Self.ab)], now: Self.t0)[0].number == 1)
    }
}
