import Foundation
import Kernel
import MeshwardCore

/// One kernel operation the planner chose, with where it goes and why.
public struct PlannedOperation: Sendable, Hashable, CustomStringConvertible {
    /// The node whose kernel receives the operation.
    public let node: String
    public let operation: KernelOperation
    /// The channel the object belongs to, when it is known.
    public let channel: ChannelID?

    public init(node: String, operation: KernelOperation, channel: ChannelID?) {
        self.node = node
        self.operation = operation
        self.channel = channel
    }

    public var description: String { "\(node): \(operation)" }
}

/// A channel that needs a new generation before it can go on, and why.
public struct GenerationNeed: Sendable, Hashable {
    public enum Reason: String, Sendable, Hashable, Codable {
        case new
        case age
        case packets
        case requested
        case cipherChanged = "cipher-changed"
        case readdressed
        case lostState = "lost-state"
        case keyMismatch = "key-mismatch"
    }

    /// What the Store needs to issue it.
    public let request: GenerationRequest
    public let reason: Reason

    public var channel: ChannelID { request.channel }
}

/// Why a channel cannot advance in this pass.
public struct BlockedChannel: Sendable, Hashable {
    public let channel: ChannelID
    /// The nodes it waits for, and why, one each.
    public let reasons: [BlockReason]

    /// Every reason, as messages show them.
    public var reason: String { reasons.map(\.description).joined(separator: "; ") }
}

/// An operation of the diff that a gate keeps back in this pass, and why. In a pass that has
/// other work it is the next step waiting for this one; in a pass with nothing else to do it is
/// a stall, and the fleet is not converged.
public struct HeldOperation: Sendable, Hashable, CustomStringConvertible {
    public let node: String
    public let operation: KernelOperation
    public let channel: ChannelID?
    /// What the gate waits for.
    public let reason: HoldReason

    public var description: String {
        "\(node): \(operation) held: \(reason)" + (channel.map { " (channel \($0))" } ?? "")
    }
}

/// The outcome of planning one pass: what to do to each node, what to write to the Store, and
/// what waits.
public struct PassPlan: Sendable {
    /// Operations per node, in the order they must be sent.
    public var operations: [String: [PlannedOperation]] = [:]
    /// Channel records whose generations changed state or whose step moved.
    public var recordUpdates: [ChannelID: ChannelRecord] = [:]
    /// Channels that have left every kernel and can be forgotten.
    public var removedChannels: [ChannelID] = []
    /// Channels that need a new generation issued before they can go on.
    public var generationRequests: [GenerationNeed] = []
    /// The earliest time at which a time-gated step (drain) may go on; nil when nothing waits.
    public var nextDeadline: Date?
    /// Inbound SAs no generation accounts for whose sender stopped using them in this pass:
    /// their drain starts now.
    public var freedUnaccountedSAs: [SAIdentifier] = []
    /// Unaccounted SAs with a recorded drain that no node holds any more: forget them.
    public var forgottenUnaccountedSAs: [SAIdentifier] = []
    /// Inbound SAs deleted although their packet counter was still moving, because their drain
    /// had lasted `FleetPlanner.drainBound` times `drain`: logged by the executor.
    public var drainsCutShort: [SAIdentifier] = []
    /// How many operations gates kept back without a deadline, and the first few of them.
    public var heldCount = 0
    public var held: [HeldOperation] = []
    /// Channels that cannot advance because a node they need did not answer.
    public var blocked: [BlockedChannel] = []
    /// How many channels are in each step after this pass's planning, for progress. Each
    /// channel's own step is in its record (`recordUpdates` carries those that moved).
    public var stepCounts: [ChannelStep: Int] = [:]

    public init() {}

    /// The number of operations in the plan.
    public var operationCount: Int { operations.values.reduce(0) { $0 + $1.count } }

    /// True when nothing is left to do now (there may still be a deadline or blocked channels).
    public var hasWork: Bool { operationCount > 0 || !generationRequests.isEmpty }

    /// True when carrying the plan out would write to the Store or send to a kernel: operations,
    /// generations to issue, records that moved, channels to forget, unaccounted SAs to record.
    public var writesOrSends: Bool {
        hasWork || !recordUpdates.isEmpty || !removedChannels.isEmpty || !freedUnaccountedSAs.isEmpty
            || !forgottenUnaccountedSAs.isEmpty
    }

    /// The nodes whose state the plan's steps rest on: both ends of every channel it sends an
    /// operation for, issues a generation for, moves or forgets (a channel's gates consult its two
    /// ends), and, for an operation of no known channel, its node and every peer of that node.
    public func nodesActedOn(peers: [String: Set<String>]) -> Set<String> {
        var nodes: Set<String> = []
        for (node, planned) in operations {
            nodes.insert(node)
            for operation in planned {
                if let channel = operation.channel {
                    nodes.insert(channel.from)
                    nodes.insert(channel.to)
                } else {
                    nodes.formUnion(peers[node] ?? [])
                }
            }
        }
        for channel in generationRequests.map(\.channel) + Array(recordUpdates.keys) + removedChannels {
            nodes.insert(channel.from)
            nodes.insert(channel.to)
        }
        return nodes
    }

    /// True when the fleet matches the intent: nothing to do, nothing waiting, nothing blocked,
    /// nothing held back.
    public var isConverged: Bool { !hasWork && nextDeadline == nil && blocked.isEmpty && heldCount == 0 }

    /// The most held operations a plan keeps for messages.
    static let heldSampleLimit = 20

    mutating func hold(_ operation: HeldOperation) {
        heldCount += 1
        if held.count < Self.heldSampleLimit { held.append(operation) }
    }

    mutating func wait(until deadline: Date) {
        nextDeadline = min(nextDeadline ?? deadline, deadline)
    }
}
