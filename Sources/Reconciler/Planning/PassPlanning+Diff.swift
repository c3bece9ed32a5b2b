import DesiredState
import Foundation
import Kernel
import MeshwardCore

extension PassPlanning {
    // MARK: - Diff

    /// Claims the channel's objects on its two nodes and stages whatever is missing or differs.
    /// Returns whether an outbound policy pinning `final` was staged (the switch, for a pending
    /// generation).
    mutating func diffChannel(_ intent: ChannelIntent, final: Generation, from: Int, to: Int) -> Bool {
        let expected = Self.securityAssociation(final, reqid: input.reqid)
        claimOrAdd(expected, generation: final, on: to, channel: intent.id)
        claimOrAdd(expected, generation: final, on: from, channel: intent.id)
        var switchStaged = false
        for traffic in intent.traffic {
            let selector = PolicySelector(
                source: IPPrefix(host: intent.source), destination: IPPrefix(host: intent.destination), traffic: traffic
            )
            let outbound = SecurityPolicy(
                selector: selector, direction: .outbound, priority: input.priority,
                template: PolicyTemplate(
                    family: intent.id.family, spi: final.spi, reqid: input.reqid, isOptional: false))
            let inbound = SecurityPolicy(
                selector: selector, direction: .inbound, priority: input.priority,
                template: PolicyTemplate(
                    family: intent.id.family, spi: nil, reqid: input.reqid,
                    isOptional: intent.enforcement == .permissive))
            if claimOrWrite(outbound, on: from, channel: intent.id) { switchStaged = true }
            claimOrWrite(inbound, on: to, channel: intent.id)
        }
        return switchStaged
    }

    // Methods rather than functions nested in `diffChannel`: a nested function that captures
    // `self` copied the whole index at each lookup (half of a steady pass's time).

    /// Claims `expected` on `node`, staging its deletion when the node holds a different SA
    /// under its identifier, or its addition when the node holds none.
    private mutating func claimOrAdd(
        _ expected: SecurityAssociation, generation: Generation, on node: Int, channel: ChannelID
    ) {
        guard index.isObserved(node) else { return }
        let saID = expected.identifier
        if let position = index.saPosition(saID, on: node) {
            work[node].claimedSAs[position] = true
            if index.holdsDifferent(saID, expected, on: node) {
                stage(.deleteSA(saID), on: node, channel: channel)
            }
        } else {
            stage(.addSA(expected), on: node, generation: generation, channel: channel)
        }
    }

    /// Claims `policy` on `node`, staging its replacement when the node's differs, or its
    /// addition when the node has none. Returns whether an outbound policy was staged.
    @discardableResult
    private mutating func claimOrWrite(_ policy: SecurityPolicy, on node: Int, channel: ChannelID) -> Bool {
        guard index.isObserved(node) else { return false }
        let staged: KernelOperation?
        if let position = index.policyPosition(policy.identifier, on: node) {
            work[node].claimedPolicies[position] = true
            guard !index.policy(at: position, on: node).hasSameConfiguration(as: policy) else { return false }
            staged = stage(.updatePolicy(policy), on: node, channel: channel)
        } else {
            staged = stage(.addPolicy(policy), on: node, channel: channel)
        }
        return policy.direction == .outbound && staged != nil
    }
}
