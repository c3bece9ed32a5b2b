import Kernel
import MeshwardCore
import Synchronization

/// A simulated fleet shared by the kernels of its nodes: one `SimulatedFleetState` behind a
/// mutex, fault injection, an operation observer, and persistence.
///
/// While an operation observer is installed, every operation takes the lock on its own, so
/// operations of different nodes' batches interleave as they would across real machines, and
/// the observer sees the fleet after each. Without one, a node's batch takes the lock once.
///
/// The fleet also keeps the watch model of every node whose kernel is watched
/// (`SimulatedKernel.startWatching()`), in memory only: every change of such a node, by an
/// operation or out of band (`withState`, a fault), is recorded in it before the call that made
/// it returns. A fleet whose kernels are not watched keeps none and pays nothing.
public final class SimulatedFleet: Sendable {
    /// Called with the fleet's state after every single operation (applied, failed or not
    /// attempted), under the fleet's lock: it may send packets and read or change the state it
    /// is given, but must not call back into the fleet.
    public typealias OperationObserver =
        @Sendable (
            _ node: String, _ operation: KernelOperation, _ outcome: OperationOutcome,
            _ state: inout SimulatedFleetState
        ) -> Void

    struct Storage: Sendable {
        var state: SimulatedFleetState
        var observer: OperationObserver?
        /// The watched nodes' models, by node and owner.
        var watches: [SimulatedNodeWatch.Key: SimulatedNodeWatch] = [:]
        /// What the file this fleet last loaded or saved holds, so that the next save writes
        /// only what changed (`save(to:)`).
        var persisted: SimulatedFleetFile.Baseline?
    }

    let storage: Mutex<Storage>

    /// A fleet starting from `state` (empty by default).
    public init(state: SimulatedFleetState = .init()) {
        storage = Mutex(Storage(state: state, observer: nil))
    }

    /// The kernel of `node` as seen by the owner of `reqid`. The node need not exist yet; until
    /// it does, the kernel is unreachable.
    public func kernel(for node: String, reqid: Reqid) -> SimulatedKernel {
        SimulatedKernel(node: node, reqid: reqid, fleet: self)
    }

    /// Runs `body` with exclusive access to the state: read it, change it, send packets.
    /// Must not call back into the fleet.
    public func withState<T, E: Error>(_ body: (inout SimulatedFleetState) throws(E) -> T) throws(E) -> T {
        let result: Result<T, E> = storage.withLock { storage in
            defer { storage.catchUpWatches() }
            do throws(E) {
                return .success(try body(&storage.state))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// A copy of the state at this instant.
    public var state: SimulatedFleetState {
        storage.withLock { $0.state }
    }

    /// Installs (or, with nil, removes) the observer called after every single operation.
    public func setOperationObserver(_ observer: OperationObserver?) {
        storage.withLock { $0.observer = observer }
    }

    /// Applies one operation to `node` as the owner of `reqid`, then calls the observer.
    func apply(_ operation: KernelOperation, on node: String, reqid: Reqid) -> OperationOutcome {
        storage.withLock { storage in
            let outcome = storage.state.apply(operation, on: node, reqid: reqid)
            storage.recordInWatches(operation, on: node)
            if let observer = storage.observer {
                observer(node, operation, outcome, &storage.state)
                storage.catchUpWatches()
            }
            return outcome
        }
    }

    /// Applies a batch to `node` as the owner of `reqid`, in order; throws
    /// `KernelError.unreachable`, having applied nothing, while the node cannot be reached. While
    /// an observer is installed each operation takes the lock on its own (`apply(_:on:reqid:)`),
    /// so that other nodes' batches interleave with it and the observer sees the fleet after
    /// each; without one, the batch takes the lock once, its reachability checked under it
    /// (thousands of batches in a pass over many nodes otherwise spend more time waiting for the
    /// lock than applying).
    func apply(_ operations: [KernelOperation], on node: String, reqid: Reqid) throws(KernelError) -> [OperationOutcome]
    {
        var outcomes: [OperationOutcome] = []
        outcomes.reserveCapacity(operations.count)
        let observed = try storage.withLock { storage throws(KernelError) in
            if let reason = storage.unreachableReason(node) { throw .unreachable(node: node, reason: reason) }
            guard storage.observer == nil else { return true }
            for operation in operations {
                outcomes.append(storage.state.apply(operation, on: node, reqid: reqid))
                storage.recordInWatches(operation, on: node)
            }
            return false
        }
        guard observed else { return outcomes }
        return operations.map { apply($0, on: node, reqid: reqid) }
    }

    /// Why `node` cannot be reached, or nil when it can.
    func unreachableReason(_ node: String) -> String? {
        storage.withLock { $0.unreachableReason(node) }
    }
}

extension SimulatedFleet.Storage {
    /// Why `node` cannot be reached, or nil when it can.
    func unreachableReason(_ node: String) -> String? {
        guard let record = state.nodes[node] else { return "the simulated fleet has no node named \(node)" }
        return record.isReachable ? nil : "the simulated node is not answering"
    }
}
