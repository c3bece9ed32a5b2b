import Kernel
import MeshwardCore

/// The watch of one simulated node as its owner of `reqid` sees it: the model every
/// `SimulatedKernel` of that node and owner shares, the revision of the node's databases the
/// model matches, and the lost-events fault.
struct SimulatedNodeWatch: Sendable {
    /// A watch is kept per node and owner.
    struct Key: Sendable, Hashable {
        var node: String
        var reqid: Reqid
    }

    let key: Key
    let model: KernelWatchModel
    /// The node's revision that the model matches; nil when the node did not exist.
    var revision: SimulatedNodeRevision.Mark?
    /// While true, the node's changes are not recorded: its watch socket overflowed, and the
    /// next recovery resynchronises the model with `lostEvents`.
    var losingEvents = false

    init(key: Key, state: SimulatedFleetState) {
        self.key = key
        model = KernelWatchModel(node: key.node)
        revision = state.nodes[key.node]?.revision.value
        model.resynchronize(to: state.watchedObjects(node: key.node, reqid: key.reqid))
    }

    /// Records what `operation`, just applied to the node, changed: the one object it names, as
    /// the node now holds it (cheaper than a resynchronisation, and the same changes).
    mutating func record(after operation: KernelOperation, in state: SimulatedFleetState) {
        guard let node = state.nodes[key.node] else { return catchUp(with: state) }
        guard revision?.instance == node.revision.instance else { return catchUp(with: state) }
        revision = node.revision.value
        guard !losingEvents else { return }
        switch operation {
        case .addSA(let association):
            record(association.identifier, in: node)
        case .deleteSA(let identifier):
            record(identifier, in: node)
        case .addPolicy(let policy), .updatePolicy(let policy):
            record(policy.identifier, in: node)
        case .deletePolicy(let identifier):
            record(identifier, in: node)
        }
    }

    /// Resynchronises the model when the node changed since it last matched, and ends its
    /// streams while the node cannot be reached (the management path is down).
    mutating func catchUp(with state: SimulatedFleetState) {
        let node = state.nodes[key.node]
        if node?.revision.value != revision {
            revision = node?.revision.value
            if !losingEvents {
                model.resynchronize(to: state.watchedObjects(node: key.node, reqid: key.reqid))
            }
        }
        if node?.isReachable != true, model.streamCount > 0 {
            model.stop(
                reason: node == nil
                    ? "the simulated fleet has no node named \(key.node)" : "the simulated node is not answering")
        }
    }

    /// Ends the lost-events fault: the model is resynchronised to the node with `lostEvents`,
    /// as the agent does when its socket reports `ENOBUFS`.
    mutating func recoverLostEvents(in state: SimulatedFleetState) {
        losingEvents = false
        revision = state.nodes[key.node]?.revision.value
        model.resynchronize(to: state.watchedObjects(node: key.node, reqid: key.reqid), lostEvents: true)
    }

    private func record(_ identifier: SAIdentifier, in node: SimulatedNode) {
        if let association = node.securityAssociationDatabase[identifier], association.reqid == key.reqid {
            model.record(.securityAssociation(association.reported))
        } else {
            model.record(.securityAssociationDeleted(identifier))
        }
    }

    private func record(_ identifier: PolicyIdentifier, in node: SimulatedNode) {
        if let policy = node.policyDatabase[identifier], policy.templateReqid == key.reqid {
            model.record(.policy(policy.reported))
        } else {
            model.record(.policyDeleted(identifier))
        }
    }
}
