import Foundation
import Kernel
import MeshwardCore

/// A pass whose plan is made and recorded but not yet sent to any kernel.
public struct PreparedPass: Sendable {
    public let number: Int
    public let startedAt: Date
    public let observations: [String: NodeObservation]
    public let unreachable: [String: String]
    public let issued: [(channel: ChannelID, spi: SPI, reason: GenerationNeed.Reason)]
    public let plan: PassPlan
    /// The nodes read afresh for this pass (or in the reading it reused): the only nodes it may
    /// send to. The others were planned on the cache.
    public let freshlyRead: Set<String>
}

/// What one pass did: whom it saw, what it sent, what the kernels answered.
public struct PassReport: Sendable {
    /// 1 for the first pass of a run.
    public let number: Int
    public let startedAt: Date
    /// Nodes that answered.
    public let observed: [String]
    /// Nodes that did not, with the reason.
    public let unreachable: [String: String]
    /// Every operation sent, with the kernel's answer, in the order each node received them.
    public let results: [(planned: PlannedOperation, outcome: OperationOutcome)]
    /// Generations issued in this pass, by channel, with the reason.
    public let issued: [(channel: ChannelID, spi: SPI, reason: GenerationNeed.Reason)]
    /// The plan the pass carried out (steps, deadline, blocked channels). A run of passes
    /// keeps the record updates and the planned operations of its last pass only (the records
    /// carry the updates on; `results` lists what each pass sent).
    public internal(set) var plan: PassPlan
    /// The observations of the pass. A run of passes keeps them for its last pass only.
    public internal(set) var observations: [String: NodeObservation]
    /// The nodes read afresh for this pass; the others were planned on the cache.
    public let freshlyRead: Set<String>

    /// Operations the kernels refused or never got.
    public var failures: [(planned: PlannedOperation, outcome: OperationOutcome)] {
        results.filter { !$0.outcome.isApplied }
    }

    /// True when the pass changed something in a kernel or the Store.
    public var madeProgress: Bool {
        results.contains { $0.outcome.isApplied } || !issued.isEmpty || !plan.recordUpdates.isEmpty
            || !plan.removedChannels.isEmpty
    }
}

/// How a run of passes ended.
public struct ConvergeReport: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// Every kernel matches the intent.
        case converged
        /// Only drain waits remain, until the given time (`--no-wait`).
        case waitingForDrain(until: Date)
        /// Nodes did not answer; what does not need them is done.
        case blocked
    }

    public let outcome: Outcome
    public let passes: [PassReport]

    public var operationCount: Int { passes.reduce(0) { $0 + $1.results.count } }
    public var last: PassReport? { passes.last }
}
