import Kernel
import MeshwardCore
import Store

extension ChannelRecord {
    /// What the kernels lack or hold differently from this record, one phrase each: an active or
    /// pending generation's SA missing or keyed differently, an active generation that the
    /// sender's outbound policy does not pin, an end that did not answer. Empty when the kernels
    /// in `observations` match the record.
    public func drift(observations: [String: NodeObservation]) -> [String] {
        var drift: [String] = []
        for generation in generations where generation.state == .active || generation.state == .pending {
            let sa = SAIdentifier(destination: generation.destination, spi: generation.spi)
            let nodes = generation.state == .active ? [id.from, id.to] : [id.to]
            for node in nodes {
                guard let observation = observations[node] else {
                    drift.append("node \(node) did not answer")
                    continue
                }
                guard let held = observation.securityAssociations.first(where: { $0.identifier == sa }) else {
                    drift.append("\(node) lacks the SA spi \(generation.spi.hex) of generation \(generation.number)")
                    continue
                }
                if held.key.fingerprint != generation.key.fingerprint || held.cipher != generation.cipher {
                    drift.append("\(node) holds another key or cipher under spi \(generation.spi.hex)")
                }
            }
            if generation.state == .active, let observation = observations[id.from] {
                let pinned = observation.policies.contains {
                    $0.direction == .outbound && $0.template.spi == generation.spi
                        && $0.selector.destination.address == generation.destination
                }
                if !pinned {
                    drift.append("\(id.from) has no outbound policy pinning spi \(generation.spi.hex)")
                }
            }
        }
        return drift
    }
}
