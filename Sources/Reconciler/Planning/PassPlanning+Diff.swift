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
        let saID = expected.identifier
        func claimOrAdd(on node: Int) {
            guard index.isObserved(node) else { return }
            if let position = index.saPosition(saID, on: node) {
                work[node].claimedSAs[position] = true
                if index.holdsDifferent(saID, expected, on: node) {
                    stage(
                        .deleteSA(saID), on: node, channel: intent.id)
                }
            } else {
                stage(
                    .addSA(expected), on: node, generation: final, channel: intent.id)
            }
        }
        claimOrAdd(on: to)
        claimOrAdd(on: from)
        var switchStaged = false
        func claimOrWrite(_ policy: SecurityPolicy, on node: Int) {
            guard index.isObserved(node) else { return }
            let staged: KernelOperation?
            if let position = index.policyPosition(policy.identifier, on: node) {
                work[node].claimedPolicies[position] = true
                guard !index.policy(at: position, on: node).hasSameConfiguration(as: policy) else { return }
                staged = stage(
                    .updatePolicy(policy), on: node, channel: intent.id)
            } else {
                staged = stage(
                    .addPolicy(policy), on: node, channel: intent.id)
            }
            if policy.direction == .outbound, staged != nil { switchStaged = true }
        }
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
            claimOrWrite(outbound, on: from)
            claimOrWrite(inbound, on: to)
        }
        return switchStaged
    }

}
