import Foundation
import MeshwardCore

/// What the store knows of one channel: the reconciler's step and the channel's generations.
public struct ChannelRecord: Sendable, Hashable {
    /// The step a channel is in when the store creates it, before the reconciler writes one.
    public static let initialStep = "new"

    public var id: ChannelID
    /// The reconciler's state machine step. Opaque to the store: written and read back verbatim.
    public var step: String
    /// When `step` last changed.
    public var stepChangedAt: Date
    /// Ascending by `number`. Retired generations may be pruned: `StateStore.update(_:)` deletes
    /// a stored generation that is missing here only when it is retired.
    public var generations: [Generation]

    public init(id: ChannelID, step: String, stepChangedAt: Date, generations: [Generation]) {
        self.id = id
        self.step = step
        self.stepChangedAt = stepChangedAt
        self.generations = generations
    }

    /// The newest generation in state `active`, if any.
    public var active: Generation? { generations.last { $0.state == .active } }

    /// The newest generation in state `pending`, if any.
    public var pending: Generation? { generations.last { $0.state == .pending } }

    /// The generation numbered `number`, if the record holds it.
    public func generation(_ number: Int) -> Generation? { generations.first { $0.number == number } }
}
