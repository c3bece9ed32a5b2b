import Foundation
import Kernel
import KernelSimulator
import Synchronization

@testable import Reconciler

/// Where the controller dies, counted from when the crash is armed.
enum CrashPoint: Sendable, Hashable, CustomStringConvertible {
    /// Before any operation takes effect (the Store already holds what the pass prepared).
    case beforeFirstOperation
    /// Right after the Nth applied operation (from 1).
    case afterApplied(Int)
    /// Right after the operation the kernel of `node` refuses (its `nth` next one is refused).
    case afterRefusal(node: String, nth: Int)

    var description: String {
        switch self {
        case .beforeFirstOperation: "before the first operation"
        case .afterApplied(let count): "after operation \(count)"
        case .afterRefusal(let node, let nth): "after \(node) refused its operation \(nth)"
        }
    }
}

/// Counts the fleet's operations from the fleet's observer (which runs under the fleet's lock,
/// on the executor's tasks) and says when the crash point is reached.
final class CrashLatch: Sendable {
    private struct State {
        var applied = 0
        var fired = false
    }

    let point: CrashPoint
    private let state = Mutex(State())

    init(point: CrashPoint) { self.point = point }

    /// True once the controller is dead.
    var hasFired: Bool { state.withLock { $0.fired } }

    /// Notes one operation's outcome; true when this one kills the controller.
    func note(_ outcome: OperationOutcome) -> Bool {
        state.withLock { state in
            guard !state.fired else { return false }
            if outcome.isApplied { state.applied += 1 }
            switch point {
            case .beforeFirstOperation: state.fired = true
            case .afterApplied(let count): state.fired = state.applied >= count
            case .afterRefusal: if case .failed = outcome { state.fired = true }
            }
            return state.fired
        }
    }
}

extension ContinuityHarness {
    /// Arms a crash: at `point`, the controller dies. From then on no kernel answers it (every
    /// node becomes unreachable to it, so the rest of its batches are never attempted), and
    /// `converge` stops after checking the pass, as a killed process would stop. The Store keeps
    /// what the dead controller wrote (the executor writes nothing after a pass but the journal).
    /// `beforeFirstOperation` makes each node refuse its next operation, so that the first one
    /// has no effect.
    func armCrash(_ point: CrashPoint) {
        let latch = CrashLatch(point: point)
        crashLatch = latch
        switch point {
        case .beforeFirstOperation:
            for node in fleet.state.nodes.keys { fleet.failOperation(on: node, nth: 1, errno: EIO) }
        case .afterRefusal(let node, let nth):
            fleet.failOperation(on: node, nth: nth, errno: ENOBUFS)
        case .afterApplied:
            break
        }
        fleet.setOperationObserver { _, _, outcome, state in
            guard latch.note(outcome) else { return }
            for node in state.nodes.keys { state.setReachable(node, false) }
        }
    }

    /// A new controller process over the same Store and the same kernels: nothing the dead one
    /// held in memory survives, its pending faults are gone and every node answers again.
    func restartController() throws {
        fleet.setOperationObserver(nil)
        crashLatch = nil
        for node in fleet.state.nodes.keys {
            fleet.clearFaults(on: node)
            fleet.setReachable(node, true)
        }
        restartReconciler()
        records = try store.loadChannels()
    }
}
