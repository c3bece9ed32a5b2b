import Foundation

/// What the Store knows of one channel: the reconciler's step and the channel's generations.
///
/// The planner reads and returns these values; the Store keeps them. Both see this one type, so
/// the Store never needs the planner and the planner never needs a database.
public struct ChannelRecord: Sendable, Hashable {
    /// The step a channel is in when the Store creates it, before the reconciler writes one.
    public static let initialStep = ChannelStep.new

    public var id: ChannelID
    /// The reconciler's state machine step. The Store writes and reads it back as it is.
    public var step: ChannelStep
    /// When `step` last changed.
    public var stepChangedAt: Date
    /// Ascending by `number`. Retired generations may be pruned: the Store's `update(_:)` deletes
    /// a stored generation that is missing here only when it is retired.
    public var generations: [Generation]

    public init(id: ChannelID, step: ChannelStep, stepChangedAt: Date, generations: [Generation]) {
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
