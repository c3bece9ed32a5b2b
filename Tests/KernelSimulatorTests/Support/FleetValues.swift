import Kernel
import KernelSimulator
import MeshwardCore

/// The nodes of the test fleets and their addresses (198.18.0.0/15).
enum FleetValues {
    static let reqid = Reqid.meshwardDefault
    static let foreignReqid = Reqid(0x1234)
    static let addresses: [String: IPAddress] = [
        "a": address("198.18.1.1"), "b": address("198.18.1.2"), "c": address("198.18.1.3"),
    ]

    static func address(_ text: String) -> IPAddress {
        guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
        return address
    }

    static func address(of node: String) -> IPAddress {
        guard let address = addresses[node] else { fatalError("no test node \(node)") }
        return address
    }

    /// A fleet of the named nodes, empty kernels.
    static func state(_ nodes: [String]) -> SimulatedFleetState {
        var state = SimulatedFleetState()
        for node in nodes { state.addNode(node, addresses: [address(of: node)]) }
        return state
    }
}

/// One generation of a channel's key material: the SPI and a fixed key (`keyByte` tells keys apart).
struct Generation: Sendable, Hashable {
    let spi: SPI
    let key: SAKey

    init(_ spi: UInt32, keyByte: UInt8? = nil) {
        self.spi = SPI(spi)
        let byte = keyByte ?? UInt8(truncatingIfNeeded: spi)
        key = .material(KeyMaterial(bytes: [UInt8](repeating: byte, count: Cipher.aesGCM256.keyLength)))
    }
}

/// The kernel objects of one channel (from -> to), as design section 3 lays them out.
struct Channel: Sendable, Hashable {
    let from: String
    let to: String

    var source: IPAddress { FleetValues.address(of: from) }
    var destination: IPAddress { FleetValues.address(of: to) }

    func association(_ generation: Generation) -> SecurityAssociation {
        SecurityAssociation(
            source: source, destination: destination, spi: generation.spi, reqid: FleetValues.reqid,
            cipher: .aesGCM256, key: generation.key
        )
    }

    var selector: PolicySelector {
        PolicySelector(source: IPPrefix(host: source), destination: IPPrefix(host: destination))
    }

    func outboundPolicy(_ generation: Generation) -> SecurityPolicy {
        SecurityPolicy(
            selector: selector, direction: .outbound,
            template: PolicyTemplate(family: .ipv4, spi: generation.spi, reqid: FleetValues.reqid, isOptional: false)
        )
    }

    func inboundPolicy(required: Bool) -> SecurityPolicy {
        SecurityPolicy(
            selector: selector, direction: .inbound,
            template: PolicyTemplate(family: .ipv4, spi: nil, reqid: FleetValues.reqid, isOptional: !required)
        )
    }

    // The single operations, on the node that receives each.
    func addInboundSA(_ generation: Generation) -> Action { .apply(to, .addSA(association(generation))) }
    func addOutboundSA(_ generation: Generation) -> Action { .apply(from, .addSA(association(generation))) }
    func addInboundPolicy(required: Bool) -> Action { .apply(to, .addPolicy(inboundPolicy(required: required))) }
    func setInboundPolicy(required: Bool) -> Action { .apply(to, .updatePolicy(inboundPolicy(required: required))) }
    func addOutboundPolicy(_ generation: Generation) -> Action { .apply(from, .addPolicy(outboundPolicy(generation))) }
    func switchOutboundPolicy(_ generation: Generation) -> Action {
        .apply(from, .updatePolicy(outboundPolicy(generation)))
    }
    var deleteOutboundPolicy: Action {
        .apply(from, .deletePolicy(PolicyIdentifier(selector: selector, direction: .outbound)))
    }
    var deleteInboundPolicy: Action {
        .apply(to, .deletePolicy(PolicyIdentifier(selector: selector, direction: .inbound)))
    }
    func deleteOutboundSA(_ generation: Generation) -> Action {
        .apply(from, .deleteSA(SAIdentifier(destination: destination, spi: generation.spi)))
    }
    func deleteInboundSA(_ generation: Generation) -> Action {
        .apply(to, .deleteSA(SAIdentifier(destination: destination, spi: generation.spi)))
    }

    /// The staged new-channel order of design section 4, ending required.
    func install(_ generation: Generation) -> [Action] {
        [
            addInboundSA(generation), addInboundPolicy(required: false), addOutboundSA(generation),
            addOutboundPolicy(generation), setInboundPolicy(required: true),
        ]
    }
}

/// One thing done to the fleet between two rounds of probe packets.
enum Action: Sendable, Hashable, CustomStringConvertible {
    /// One kernel operation on a node, through its owner's view; it must apply.
    case apply(String, KernelOperation)
    /// Reboot or re-image a node.
    case wipe(String)

    var description: String {
        switch self {
        case .apply(let node, let operation): "\(node): \(operation)"
        case .wipe(let node): "\(node): wipe"
        }
    }

    func perform(on state: inout SimulatedFleetState) -> OperationOutcome {
        switch self {
        case .apply(let node, let operation): return state.apply(operation, on: node, reqid: FleetValues.reqid)
        case .wipe(let node):
            state.wipe(node: node)
            return .applied
        }
    }
}

/// One ordered pair of nodes a probe packet travels between.
struct Probe: Sendable, Hashable, CustomStringConvertible {
    let from: String
    let to: String

    init(_ from: String, _ to: String) {
        self.from = from
        self.to = to
    }

    var description: String { "\(from)->\(to)" }

    static let ab = Probe("a", "b")
    static let ba = Probe("b", "a")
    static let ac = Probe("a", "c")
    static let ca = Probe("c", "a")
    static let bc = Probe("b", "c")
    static let cb = Probe("c", "b")
}
