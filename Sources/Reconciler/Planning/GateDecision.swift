import Foundation
import Kernel

/// What a staging gate decides for one operation of a pass's diff. `PassPlanning.stage` files
/// it: what is sent goes into the node's work, what is held or waits goes into the plan.
enum GateDecision {
    /// Send it (possibly another operation than the diff's: a relaxed policy instead of a
    /// required one).
    case send(KernelOperation)
    /// Send it, although the inbound SA's packet counter still moved: its drain reached
    /// `FleetPlanner.drainBound` times `drain` (the executor logs it).
    case sendCuttingDrainShort(KernelOperation)
    /// Not now: the step before it is not yet seen in the kernels.
    case hold(HoldReason)
    /// Not now: a peer it depends on did not answer.
    case blockedBy(BlockReason)
    /// Not before this time (a drain).
    case waitUntil(Date)
    /// Not before this time: the drain of an SA no generation accounts for starts in this pass
    /// (the Store records when).
    case startDrain(until: Date)
    /// Nothing to do: the kernel no longer holds what the diff would remove.
    case skip
}
