import Kernel
import MeshwardCore

/// A policy as the simulated kernel stores it, with its place in the insertion order (which
/// breaks ties between equal priorities: the earlier policy wins).
struct SimulatedPolicy: Sendable, Hashable, Codable {
    var source: IPPrefix
    var destination: IPPrefix
    var traffic: TrafficMatch
    var direction: PolicyDirection
    var priority: UInt32
    var templateSource: IPAddress
    var templateDestination: IPAddress
    var templateSPI: SPI?
    var templateReqid: Reqid
    var templateIsOptional: Bool
    var insertionOrder: UInt64

    init(_ policy: SecurityPolicy, insertionOrder: UInt64) {
        source = policy.selector.source
        destination = policy.selector.destination
        traffic = policy.selector.traffic
        direction = policy.direction
        priority = policy.priority
        templateSource = policy.template.source
        templateDestination = policy.template.destination
        templateSPI = policy.template.spi
        templateReqid = policy.template.reqid
        templateIsOptional = policy.template.isOptional
        self.insertionOrder = insertionOrder
    }

    var selector: PolicySelector { PolicySelector(source: source, destination: destination, traffic: traffic) }

    var identifier: PolicyIdentifier { PolicyIdentifier(selector: selector, direction: direction) }

    var template: PolicyTemplate {
        PolicyTemplate(
            source: templateSource, destination: templateDestination, spi: templateSPI,
            reqid: templateReqid, isOptional: templateIsOptional
        )
    }

    /// The policy as a backend reports it.
    var reported: SecurityPolicy {
        SecurityPolicy(selector: selector, direction: direction, priority: priority, template: template)
    }

    /// True when the selector takes a packet with these addresses, protocol and ports.
    func matches(
        source packetSource: IPAddress, destination packetDestination: IPAddress,
        transport: TransportProtocol, sourcePort: UInt16?, destinationPort: UInt16?
    ) -> Bool {
        source.contains(packetSource) && destination.contains(packetDestination)
            && traffic.matches(transport: transport, sourcePort: sourcePort, destinationPort: destinationPort)
    }

    /// True when this policy takes precedence over `other`: a lower priority value, or the same
    /// value and inserted earlier.
    func precedes(_ other: SimulatedPolicy) -> Bool {
        (priority, insertionOrder) < (other.priority, other.insertionOrder)
    }
}
