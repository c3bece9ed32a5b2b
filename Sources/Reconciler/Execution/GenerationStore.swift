import Foundation
import MeshwardCore
import Store

/// What the reconciler needs of the Store: channels with their generations, issuing new
/// generations, recording progress. `StateStore` is the real one; `ScratchGenerationStore`
/// keeps everything in memory for `plan`, which must not write.
public protocol GenerationStore: Sendable {
    func loadChannels() throws -> [ChannelID: ChannelRecord]
    /// Issues one generation per request, all or none, in the order of `requests`.
    func issueGenerations(_ requests: [GenerationRequest], now: Date) throws -> [Generation]
    func update(_ records: [ChannelRecord]) throws
    func removeChannel(_ id: ChannelID) throws
    /// Appends entries (before their operations are sent: result `planned`) and returns them with ids.
    @discardableResult func appendJournal(_ entries: [JournalEntry]) throws -> [JournalEntry]
    /// Records the outcome of entries `appendJournal` returned.
    func completeJournal(_ entries: [JournalEntry]) throws
    /// Unaccounted inbound SAs whose drain has started (kept across runs).
    func unaccountedSAs() throws -> [UnaccountedSA]
    /// Records drains that started and forgets SAs that are gone.
    func recordUnaccountedSAs(freed: [UnaccountedSA], forgotten: [(destination: IPAddress, spi: SPI)]) throws
}

extension StateStore: GenerationStore {}
