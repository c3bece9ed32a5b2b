import Foundation

/// The role that keeps the journal of kernel operations: each one recorded as planned before it
/// is sent, then completed with its outcome.
///
/// Both writes take a pass's whole batch (one transaction, one round trip) and are fenced by the
/// lease like every write (`GenerationStore`).
public protocol JournalStore: Sendable {
    /// Appends entries in order, in one transaction, and returns them with their ids.
    @discardableResult func appendJournal(_ entries: [JournalEntry]) async throws -> [JournalEntry]

    /// Writes `appliedAt` and `result` of entries `appendJournal` returned, by id, in one
    /// transaction. Entries without an id are skipped.
    func completeJournal(_ entries: [JournalEntry]) async throws

    /// Journal entries, newest first; only `node`'s when given, at most `limit` when given.
    func journal(limit: Int?, node: String?) async throws -> [JournalEntry]

    /// Deletes entries planned before `date` and returns how many.
    @discardableResult func pruneJournal(plannedBefore date: Date) async throws -> Int
}
