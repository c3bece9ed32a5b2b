import Kernel
import MeshwardCore

extension SimulatedFleet {
    /// The watch model of `node` as the owner of `reqid` sees it, made and filled from the node
    /// on first use; every `SimulatedKernel` of that node and owner shares it. Throws
    /// `KernelError.unreachable` for a node the fleet does not have.
    public func startWatching(node: String, reqid: Reqid) throws -> KernelWatchModel {
        try storage.withLock { storage throws in
            let key = SimulatedNodeWatch.Key(node: node, reqid: reqid)
            if let watch = storage.watches[key] { return watch.model }
            guard storage.state.nodes[node] != nil else {
                throw KernelError.unreachable(node: node, reason: "the simulated fleet has no node named \(node)")
            }
            let watch = SimulatedNodeWatch(key: key, state: storage.state)
            storage.watches[key] = watch
            return watch.model
        }
    }

    /// The watch model of `node` for the owner of `reqid`, or nil when it is not watched.
    public func watchModel(node: String, reqid: Reqid) -> KernelWatchModel? {
        storage.withLock { $0.watches[SimulatedNodeWatch.Key(node: node, reqid: reqid)]?.model }
    }

    /// Fault: the agent watching `node` restarted. Each of the node's watch models is replaced by
    /// a new one, as a new agent process starts it: a new epoch, whose seqs start again with a
    /// fill from the node. The old one's streams end; a stream that resumes from a position of
    /// the old epoch gets a snapshot. No effect on a node that is not watched.
    public func restartWatching(node: String) {
        let replaced = storage.withLock { storage in
            var replaced: [KernelWatchModel] = []
            for key in storage.watches.keys where key.node == node {
                guard let old = storage.watches[key] else { continue }
                replaced.append(old.model)
                storage.watches[key] = SimulatedNodeWatch(key: key, state: storage.state)
            }
            return replaced
        }
        for model in replaced { model.stop(reason: "the agent of node \(node) restarted") }
    }

    /// Fault: the watch socket of `node` overflowed. From now on the node's changes are not
    /// recorded in its watch models, until `recoverLostWatchEvents(on:)` or the node's next
    /// observation resynchronises them with `lostEvents` (as the agent does on `ENOBUFS`). No
    /// effect on a node that is not watched.
    public func loseWatchEvents(on node: String) {
        storage.withLock { storage in
            for key in storage.watches.keys where key.node == node {
                storage.watches[key]?.losingEvents = true
            }
        }
    }

    /// Ends the lost-events fault of `node`: each of its models is resynchronised to the node
    /// with `lostEvents`, so its streams receive the differences as ordinary changes.
    public func recoverLostWatchEvents(on node: String) {
        storage.withLock { storage in
            for key in storage.watches.keys where key.node == node && storage.watches[key]?.losingEvents == true {
                storage.watches[key]?.recoverLostEvents(in: storage.state)
            }
        }
    }

    /// Observes `node` as the owner of `reqid`; when the node is watched, resynchronises its
    /// model to this reading (ending a lost-events fault) and reports the position it matches.
    func observeWatched(node: String, reqid: Reqid) throws -> NodeObservation {
        let key = SimulatedNodeWatch.Key(node: node, reqid: reqid)
        // A node nobody watches is observed from a copy of its record, outside the fleet's
        // lock: the observations of a pass over many nodes run in parallel.
        let unwatched: SimulatedNode?? = storage.withLock { storage in
            storage.watches[key] == nil ? .some(storage.state.nodes[node]) : .none
        }
        if case .some(let record) = unwatched {
            return try SimulatedFleetState.observe(record, named: node, reqid: reqid)
        }
        return try storage.withLock { storage throws in
            var observation = try storage.state.observe(node: node, reqid: reqid)
            guard var watch = storage.watches[key] else { return observation }
            if watch.losingEvents {
                watch.recoverLostEvents(in: storage.state)
            } else {
                watch.revision = storage.state.nodes[node]?.revision.value
                watch.model.resynchronize(
                    to: WatchedObjects(
                        securityAssociations: observation.securityAssociations, policies: observation.policies))
            }
            storage.watches[key] = watch
            observation.watchPosition = watch.model.position
            return observation
        }
    }
}

extension SimulatedFleet.Storage {
    /// Records what `operation`, just applied to `node`, changed in the node's watch models.
    mutating func recordInWatches(_ operation: KernelOperation, on node: String) {
        guard !watches.isEmpty else { return }
        for key in watches.keys where key.node == node {
            watches[key]?.record(after: operation, in: state)
        }
    }

    /// Brings every watch model up to date with changes made outside an operation.
    mutating func catchUpWatches() {
        guard !watches.isEmpty else { return }
        for key in watches.keys {
            watches[key]?.catchUp(with: state)
        }
    }
}
