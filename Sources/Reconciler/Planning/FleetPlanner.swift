import DesiredState
import Dispatch
import Foundation
import Kernel
import MeshwardCore
import Synchronization

/// Plans one pass: from the intent, the Store's generations and one observation of every
/// reachable node, the operations each node gets now, the generation changes to record, and
/// the generations to issue.
///
/// Pure: values in, values out. The staging rules of the design are enforced here as gates on
/// each operation of the minimal diff, evaluated against this pass's observation, so a step
/// starts only once the step before it is seen in the kernels:
/// - an inbound SA of a new generation goes in at once; the outbound SA only once the
///   receiver holds the inbound one; a policy pins an SPI only once both SAs are there;
/// - an inbound policy becomes required only once the sender encrypts that traffic; on the way
///   out it becomes optional first, and goes only after the sender's policy is gone;
/// - an SA is deleted only when no policy pins it; an inbound SA only when its sender neither
///   pins nor holds it, and its drain has passed;
/// - an SA of a generation that was ever active is never installed again: a missing one makes
///   a new generation (lost state), and so does a changed cipher, address or key.
///
/// The diff is channel-centric: each channel looks up its own objects on its two nodes and
/// claims them; whatever no channel claims is stale. Nothing is sorted or copied per object,
/// so a pass costs one hash lookup per expected object.
public struct FleetPlanner: Sendable {
    /// A staging rule, named so that a test can switch one off and show that the continuity
    /// check catches the broken order. Production code never switches any off.
    enum Rule: Hashable, Sendable {
        /// The sender installs and pins a new SA only once the receiver holds it.
        case receiverFirst
        /// An inbound policy becomes required only once the sender encrypts.
        case enforceAfterSender
        /// An old inbound SA goes only once its sender stopped using it.
        case senderStopsFirst
        /// An old inbound SA goes only once `drain` has passed since the sender switched away.
        case drainWait
        /// ... and only once its packet counter stopped moving between two observations.
        case counterStopped
        /// Only a pending generation whose switch was never sent is ever installed; a used one
        /// that lost an SA is burned.
        case installOnlyUnusedPending
        /// An SA goes only once no policy of its node pins it.
        case unpinnedBeforeDelete
        /// On the way out the receiver's inbound policy becomes optional before the sender's
        /// outbound policy goes, and the inbound policy goes only after it.
        case removalReceiverLast
    }

    /// How many times `drain` an inbound SA whose packet counter keeps moving is kept at most.
    static let drainBound = 10.0

    /// Rules switched off (tests only).
    let disabledRules: Set<Rule>
    /// The fewest channels worth splitting across threads.
    let parallelThreshold: Int
    /// How many chunks to split into; nil for four per processor (at most 32): a thread that
    /// finishes early takes the next chunk, so a core lent to other work for a while (the
    /// plan's fingerprints) does not leave one chunk to finish alone.
    let chunks: Int?
    /// The fewest nodes whose lookup tables are worth building across threads.
    let indexParallelNodes: Int

    public init() {
        disabledRules = []
        parallelThreshold = 20_000
        chunks = nil
        indexParallelNodes = FleetIndex.parallelNodes
    }

    init(
        disabling rules: Set<Rule> = [], parallelThreshold: Int = 20_000, chunks: Int? = nil,
        indexParallelNodes: Int = FleetIndex.parallelNodes
    ) {
        disabledRules = rules
        self.parallelThreshold = parallelThreshold
        self.chunks = chunks
        self.indexParallelNodes = indexParallelNodes
    }

    public func plan(_ input: PlanningInput) -> PassPlan {
        let index = FleetIndex(input: input, parallelNodes: indexParallelNodes)

        // Channels the spec names, in contiguous chunks (so consecutive channels share their
        // sender). Below `parallelThreshold` channels a pass is planned on one thread; above it
        // the chunks are planned in parallel and merged in order, so the result is the same
        // either way.
        let channels = input.intent.channels
        let chunkCount =
            channels.count < parallelThreshold
            ? 1 : max(1, min(channels.count, chunks ?? min(32, 4 * ProcessInfo.processInfo.activeProcessorCount)))
        let bounds = (0...chunkCount).map { channels.count * $0 / chunkCount }
        let results = Mutex<[PassPlanning?]>([PassPlanning?](repeating: nil, count: chunkCount))
        DispatchQueue.concurrentPerform(iterations: chunkCount) { chunk in
            var planning = PassPlanning(rules: disabledRules, input: input, index: index)
            var sender: (name: String, number: Int)?
            for intent in channels[bounds[chunk]..<bounds[chunk + 1]] { planning.planChannel(intent, sender: &sender) }
            results.withLock { $0[chunk] = planning }
        }
        // The first chunk is the base the others are appended to (its operations are not copied).
        var planned = results.withLock { results in
            defer { results = [] }
            return results
        }
        var merged = planned[0] ?? PassPlanning(rules: disabledRules, input: input, index: index)
        planned[0] = nil
        for result in planned {
            if let result { merged.absorb(result) }
        }
        merged.joinsAcrossThreads = chunkCount > 1

        // Channels only the Store still knows: the spec dropped them.
        if merged.matched < input.channels.count {
            let live = Set(input.intent.channels.map(\.id))
            for (id, stored) in input.channels where !live.contains(id) { merged.planRemovedChannel(stored) }
        }
        // Whatever no channel claimed is stale.
        merged.stageStaleObjects()
        return merged.finishedPlan()
    }
}

extension Duration {
    /// The duration in seconds, as Foundation's `TimeInterval`.
    public var timeInterval: TimeInterval {
        let parts = components
        return TimeInterval(parts.seconds) + TimeInterval(parts.attoseconds) / 1e18
    }

    /// The duration for a message: `30 s`, `0.5 s`.
    public var secondsText: String {
        let seconds = timeInterval
        return seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }
}
