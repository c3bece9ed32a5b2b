import DesiredState
import Kernel
import MeshwardCore
import Store

/// Lookups over one pass's input: who owns an address, what each node holds, which
/// generation an SA belongs to.
struct FleetIndex {
    /// Which node an address belongs to: the intent first, then the Store's generations.
    var addressOwner: [IPAddress: String] = [:]
    /// Per reachable node: its SAs by identifier.
    var sas: [String: [SAIdentifier: SecurityAssociation]] = [:]
    /// Per reachable node: its policies by identifier.
    var policies: [String: [PolicyIdentifier: SecurityPolicy]] = [:]
    /// Per reachable node: the SAs its outbound policies pin.
    var pinned: [String: Set<SAIdentifier>] = [:]
    /// Every generation the Store knows, by the SA it describes.
    var generationBySA: [SAIdentifier: Generation] = [:]

    init(input: PlanningInput) {
        for record in input.channels.values {
            for generation in record.generations {
                addressOwner[generation.source] = generation.channel.from
                addressOwner[generation.destination] = generation.channel.to
                generationBySA[SAIdentifier(destination: generation.destination, spi: generation.spi)] = generation
            }
        }
        for node in input.intent.nodes {
            for address in node.addresses { addressOwner[address] = node.name }
        }
        for (node, observation) in input.observations {
            var byID: [SAIdentifier: SecurityAssociation] = [:]
            for sa in observation.securityAssociations { byID[sa.identifier] = sa }
            sas[node] = byID
            var policyByID: [PolicyIdentifier: SecurityPolicy] = [:]
            var pins = Set<SAIdentifier>()
            for policy in observation.policies {
                policyByID[policy.identifier] = policy
                if policy.direction == .outbound, let spi = policy.template.spi {
                    pins.insert(SAIdentifier(destination: policy.selector.destination.address, spi: spi))
                }
            }
            policies[node] = policyByID
            pinned[node] = pins
        }
    }

    /// What is known of a peer: observed, unreachable (blocks), or gone (nothing to wait for).
    enum PeerState {
        case observed(String)
        case unreachable(String)
        case gone
    }

    func peer(owning address: IPAddress, input: PlanningInput) -> PeerState {
        guard let node = addressOwner[address], input.knownNodes.contains(node) else { return .gone }
        return input.observations[node] != nil ? .observed(node) : .unreachable(node)
    }

    func sa(_ id: SAIdentifier, on node: String) -> SecurityAssociation? { sas[node]?[id] }

    func policy(_ id: PolicyIdentifier, on node: String) -> SecurityPolicy? { policies[node]?[id] }

    func pins(_ id: SAIdentifier, on node: String) -> Bool { pinned[node]?.contains(id) ?? false }

    /// True when `node` holds an outbound policy for `selector` pinning an SA that `receiver` holds.
    func encrypts(_ selector: PolicySelector, sender node: String, receiver: String) -> Bool {
        guard let policy = policy(PolicyIdentifier(selector: selector, direction: .outbound), on: node),
            let spi = policy.template.spi
        else { return false }
        return sa(SAIdentifier(destination: selector.destination.address, spi: spi), on: receiver) != nil
    }
}
