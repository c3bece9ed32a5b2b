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
    @discardableResult func appendJournal(_ entries: [JournalEntry]) throws -> [JournalEntry]
}

extension StateStore: GenerationStore {}
