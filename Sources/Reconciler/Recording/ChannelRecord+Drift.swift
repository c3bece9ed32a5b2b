import Kernel
import MeshwardCore
import Store

/// The observed objects drift is judged against, indexed once for a whole fleet: each node's
/// SAs by identifier and the (SPI, destination) pairs its outbound policies pin. Judging a
/// channel then costs a few lookups instead of a scan of both nodes' objects, which at a
/// thousand nodes (two thousand SAs each, a million channels) was billions of comparisons per
/// pass.
public struct ObservedObjects: Sendable {
    struct Pin: Hashable {
        var spi: SPI
        var destination: IPAddress
    }

    private var associations: [String: [SAIdentifier: SecurityAssociation]] = [:]
    private var pins: [String: Set<Pin>] = [:]

    /// Indexes every node of `observations`; a node missing from it did not answer.
    public init(_ observations: [String: NodeObservation]) {
        for (node, observation) in observations {
            var byIdentifier: [SAIdentifier: SecurityAssociation] = [:]
            byIdentifier.reserveCapacity(observation.securityAssociations.count)
            for association in observation.securityAssociations where byIdentifier[association.identifier] == nil {
                byIdentifier[association.identifier] = association
            }
            associations[node] = byIdentifier
            var pinned = Set<Pin>()
            for policy in observation.policies where policy.direction == .outbound {
                guard let spi = policy.template.spi else { continue }
                pinned.insert(Pin(spi: spi, destination: policy.selector.destination.address))
            }
            pins[node] = pinned
        }
    }

    /// Whether `node` answered.
    public func answered(_ node: String) -> Bool { associations[node] != nil }

    /// The SA `node` holds under `identifier`, if it answered and holds one.
    public func association(_ identifier: SAIdentifier, on node: String) -> SecurityAssociation? {
        associations[node]?[identifier]
    }

    /// Whether an outbound policy of `node` pins `spi` toward `destination`.
    func pins(_ spi: SPI, toward destination: IPAddress, on node: String) -> Bool {
        pins[node]?.contains(Pin(spi: spi, destination: destination)) ?? false
    }
}

extension ChannelRecord {
    /// What the kernels lack or hold differently from this record, one phrase each: an active or
    /// pending generation's SA missing or keyed differently, an active generation that the
    /// sender's outbound policy does not pin, an end that did not answer. Empty when the kernels
    /// in `observed` match the record.
    public func drift(in observed: ObservedObjects) -> [String] {
        var drift: [String] = []
        for generation in generations where generation.state == .active || generation.state == .pending {
            let sa = SAIdentifier(destination: generation.destination, spi: generation.spi)
            let nodes = generation.state == .active ? [id.from, id.to] : [id.to]
            for node in nodes {
                guard observed.answered(node) else {
                    drift.append("node \(node) did not answer")
                    continue
                }
                guard let held = observed.association(sa, on: node) else {
                    drift.append("\(node) lacks the SA spi \(generation.spi.hex) of generation \(generation.number)")
                    continue
                }
                if held.key.fingerprint != generation.key.fingerprint || held.cipher != generation.cipher {
                    drift.append("\(node) holds another key or cipher under spi \(generation.spi.hex)")
                }
            }
            if generation.state == .active, observed.answered(id.from),
                !observed.pins(generation.spi, toward: generation.destination, on: id.from)
            {
                drift.append("\(id.from) has no outbound policy pinning spi \(generation.spi.hex)")
            }
        }
        return drift
    }
}
