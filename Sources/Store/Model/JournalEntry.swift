import Foundation
import MeshwardCore

/// One kernel operation: what was planned on which node, and how applying it went.
///
/// `target` describes the object (`SA 198.18.1.11 spi 0x0001a2b3`, `policy out web-1->app-1`);
/// it never holds key material.
public struct JournalEntry: Sendable, Hashable {
    /// Assigned by the store when appended; nil before.
    public var id: Int64?
    /// The node whose kernel the operation targets.
    public var node: String
    /// The operation's name, for example `add-sa`, `update-policy`, `delete-sa`.
    public var operation: String
    /// The object the operation acts on, in text. Never key material.
    public var target: String
    /// The channel the operation serves, if any.
    public var channel: ChannelID?
    public var plannedAt: Date
    /// When it was applied; nil when it was planned but not (yet) applied.
    public var appliedAt: Date?
    /// How the operation went: `planned` until it is answered, then its outcome.
    public var result: JournalResult
    /// The revision being applied, if any (`RevisionRecord.id`).
    public var revision: Int64?

    public init(
        id: Int64? = nil, node: String, operation: String, target: String, channel: ChannelID? = nil,
        plannedAt: Date, appliedAt: Date? = nil, result: JournalResult, revision: Int64? = nil
    ) {
        self.id = id
        self.node = node
        self.operation = operation
        self.target = target
        self.channel = channel
        self.plannedAt = plannedAt
        self.appliedAt = appliedAt
        self.result = result
        self.revision = revision
    }
}
