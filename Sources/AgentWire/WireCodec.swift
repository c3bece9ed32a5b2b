import Foundation
import Kernel
import MeshwardCore

/// Translates between Kernel's values and the agent's protobuf messages.
///
/// One of the sanctioned readers of key bytes: an `addSA` operation's key travels in its apply
/// request (over mutual TLS, to the two nodes of its channel only). Observations carry each SA's
/// key fingerprint, never its bytes, in either direction.
public enum WireCodec {
    /// The wire versions this release speaks: 1 (observe, apply, the ready mark, certificate
    /// renewal, enrollment) and 2 (the watch stream, and the watch position in observe and apply
    /// replies). A peer that shares none of them is refused, naming both.
    public static let protocolVersions: ClosedRange<UInt32> = 1...2
    /// The newest version this release speaks.
    public static var protocolVersion: UInt32 { protocolVersions.upperBound }
    /// The first version, whose messages every later one still reads: a request of version 1
    /// (observe, apply, the ready mark, renewal, enrollment) says so, so that an agent of any
    /// version serves it.
    public static let firstProtocolVersion: UInt32 = 1
    /// The first version with the watch stream and the watch position in replies.
    public static let watchProtocolVersion: UInt32 = 2

    /// The version in which an agent that speaks `spoken` answers a request whose sender can be
    /// answered in `oldest` (the request's `protocol_version`) up to `newest` (its
    /// `newest_protocol_version`; 0 from a sender of version 1, meaning `oldest`): the newest
    /// version both speak, or nil when they share none.
    public static func answerVersion(
        oldest: UInt32, newest: UInt32, spoken: ClosedRange<UInt32> = protocolVersions
    ) -> UInt32? {
        let newest = max(oldest, newest)
        let low = max(oldest, spoken.lowerBound)
        let high = min(newest, spoken.upperBound)
        return low <= high ? high : nil
    }

    // MARK: Observation

    /// The reply to an observe call; keys become fingerprints. The watch position goes with it
    /// when the reading has one.
    public static func reply(
        to observation: NodeObservation, bootID: String, highestEpoch: UInt64
    ) -> Meshward_Agent_V1_ObserveReply {
        var reply = Meshward_Agent_V1_ObserveReply()
        reply.protocolVersion = protocolVersion
        if let position = observation.watchPosition { reply.watchPosition = encode(position) }
        reply.bootID = bootID
        reply.highestEpoch = highestEpoch
        reply.securityAssociations = observation.securityAssociations.map { encode($0, keyBytes: false) }
        reply.policies = observation.policies.map(encode)
        reply.statistics = observation.statistics
        reply.foreignSpis = observation.foreignSPIs.sorted().map(encode)
        return reply
    }

    /// The observation an observe reply describes.
    public static func observation(from reply: Meshward_Agent_V1_ObserveReply) throws(WireError) -> NodeObservation {
        var observation = NodeObservation(
            securityAssociations: try reply.securityAssociations.map(decode),
            policies: try reply.policies.map(decode),
            statistics: reply.statistics,
            foreignSPIs: Set(try reply.foreignSpis.map(decode)))
        observation.bootID = reply.bootID.isEmpty ? nil : reply.bootID
        observation.watchPosition = reply.hasWatchPosition ? decode(reply.watchPosition) : nil
        return observation
    }

    // MARK: Operations

    public static func encode(_ operation: KernelOperation) -> Meshward_Agent_V1_KernelOperation {
        var message = Meshward_Agent_V1_KernelOperation()
        switch operation {
        case .addSA(let sa): message.addSa = encode(sa, keyBytes: true)
        case .deleteSA(let id): message.deleteSa = encode(id)
        case .addPolicy(let policy): message.addPolicy = encode(policy)
        case .updatePolicy(let policy): message.updatePolicy = encode(policy)
        case .deletePolicy(let id): message.deletePolicy = encode(id)
        }
        return message
    }

    public static func decode(_ message: Meshward_Agent_V1_KernelOperation) throws(WireError) -> KernelOperation {
        switch message.kind {
        case .addSa(let sa): return .addSA(try decode(sa))
        case .deleteSa(let id): return .deleteSA(try decode(id))
        case .addPolicy(let policy): return .addPolicy(try decode(policy))
        case .updatePolicy(let policy): return .updatePolicy(try decode(policy))
        case .deletePolicy(let id): return .deletePolicy(try decode(id))
        case nil: throw WireError.malformed("an operation without a kind")
        }
    }

    public static func encode(_ outcome: OperationOutcome) -> Meshward_Agent_V1_OperationOutcome {
        var message = Meshward_Agent_V1_OperationOutcome()
        switch outcome {
        case .applied: message.kind = .applied
        case .failed(let errno, let text):
            message.kind = .failed
            message.errorNumber = errno
            if let text { message.message = text }
        case .notAttempted(let reason):
            message.kind = .notAttempted
            message.message = reason
        case .indeterminate(let reason):
            message.kind = .indeterminate
            message.message = reason
        }
        return message
    }

    public static func decode(_ message: Meshward_Agent_V1_OperationOutcome) throws(WireError) -> OperationOutcome {
        switch message.kind {
        case .applied: return .applied
        case .failed: return .failed(errno: message.errorNumber, message: message.hasMessage ? message.message : nil)
        case .notAttempted: return .notAttempted(reason: message.message)
        case .indeterminate: return .indeterminate(reason: message.message)
        case .UNRECOGNIZED(let value): throw WireError.malformed("an outcome of unknown kind \(value)")
        }
    }

    // MARK: Values

    static func encode(_ sa: SecurityAssociation, keyBytes: Bool) -> Meshward_Agent_V1_SecurityAssociation {
        var message = Meshward_Agent_V1_SecurityAssociation()
        message.source = Data(sa.source.bytes)
        message.destination = Data(sa.destination.bytes)
        message.spi = sa.spi.rawValue
        message.reqid = sa.reqid.rawValue
        message.cipher = sa.cipher.rawValue
        if keyBytes, let material = sa.key.material {
            message.keyMaterial = Data(material.bytes)
        } else {
            message.keyFingerprint = sa.key.fingerprint
        }
        message.replayWindow = sa.replayWindow
        message.extendedSequenceNumbers = sa.extendedSequenceNumbers
        var counters = Meshward_Agent_V1_SACounters()
        counters.bytes = sa.counters.bytes
        counters.packets = sa.counters.packets
        counters.addTime = sa.counters.addTime
        counters.useTime = sa.counters.useTime
        message.counters = counters
        return message
    }

    static func decode(_ message: Meshward_Agent_V1_SecurityAssociation) throws(WireError) -> SecurityAssociation {
        guard let cipher = Cipher(rawValue: message.cipher) else {
            throw WireError.malformed("an SA with unknown cipher `\(message.cipher)`")
        }
        let key: SAKey
        switch message.key {
        case .keyMaterial(let bytes): key = .material(KeyMaterial(bytes: Array(bytes)))
        case .keyFingerprint(let fingerprint): key = .fingerprint(fingerprint)
        case nil: throw WireError.malformed("an SA without key or fingerprint")
        }
        return SecurityAssociation(
            source: try address(message.source, "SA source"),
            destination: try address(message.destination, "SA destination"),
            spi: SPI(message.spi), reqid: Reqid(message.reqid), cipher: cipher, key: key,
            replayWindow: message.replayWindow, extendedSequenceNumbers: message.extendedSequenceNumbers,
            counters: SACounters(
                bytes: message.counters.bytes, packets: message.counters.packets, addTime: message.counters.addTime,
                useTime: message.counters.useTime))
    }

    static func encode(_ id: SAIdentifier) -> Meshward_Agent_V1_SAIdentifier {
        var message = Meshward_Agent_V1_SAIdentifier()
        message.destination = Data(id.destination.bytes)
        message.spi = id.spi.rawValue
        return message
    }

    static func decode(_ message: Meshward_Agent_V1_SAIdentifier) throws(WireError) -> SAIdentifier {
        SAIdentifier(destination: try address(message.destination, "SA destination"), spi: SPI(message.spi))
    }

    static func encode(_ policy: SecurityPolicy) -> Meshward_Agent_V1_SecurityPolicy {
        var message = Meshward_Agent_V1_SecurityPolicy()
        message.selector = encode(policy.selector)
        message.direction = policy.direction.rawValue
        message.priority = policy.priority
        var template = Meshward_Agent_V1_PolicyTemplate()
        template.source = Data(policy.template.source.bytes)
        template.destination = Data(policy.template.destination.bytes)
        if let spi = policy.template.spi { template.spi = spi.rawValue }
        template.reqid = policy.template.reqid.rawValue
        template.isOptional = policy.template.isOptional
        message.template = template
        return message
    }

    static func decode(_ message: Meshward_Agent_V1_SecurityPolicy) throws(WireError) -> SecurityPolicy {
        let template = message.template
        return SecurityPolicy(
            selector: try decode(message.selector), direction: try direction(message.direction),
            priority: message.priority,
            template: PolicyTemplate(
                source: try address(template.source, "template source"),
                destination: try address(template.destination, "template destination"),
                spi: template.hasSpi ? SPI(template.spi) : nil, reqid: Reqid(template.reqid),
                isOptional: template.isOptional))
    }

    static func encode(_ selector: PolicySelector) -> Meshward_Agent_V1_PolicySelector {
        var message = Meshward_Agent_V1_PolicySelector()
        message.source = encode(selector.source)
        message.destination = encode(selector.destination)
        var traffic = Meshward_Agent_V1_TrafficMatch()
        traffic.transport = selector.traffic.transport?.rawValue ?? ""
        if let port = selector.traffic.sourcePort { traffic.sourcePort = UInt32(port) }
        if let port = selector.traffic.destinationPort { traffic.destinationPort = UInt32(port) }
        message.traffic = traffic
        return message
    }

    static func decode(_ message: Meshward_Agent_V1_PolicySelector) throws(WireError) -> PolicySelector {
        let traffic = message.traffic
        var transport: TransportProtocol?
        if !traffic.transport.isEmpty {
            guard let known = TransportProtocol(rawValue: traffic.transport) else {
                throw WireError.malformed("a selector with unknown protocol `\(traffic.transport)`")
            }
            transport = known
        }
        func port(_ has: Bool, _ value: UInt32) throws(WireError) -> UInt16? {
            guard has else { return nil }
            guard let port = UInt16(exactly: value) else { throw WireError.malformed("a port out of range: \(value)") }
            return port
        }
        return PolicySelector(
            source: try decode(message.source), destination: try decode(message.destination),
            traffic: TrafficMatch(
                transport: transport, sourcePort: try port(traffic.hasSourcePort, traffic.sourcePort),
                destinationPort: try port(traffic.hasDestinationPort, traffic.destinationPort)))
    }

    static func encode(_ prefix: IPPrefix) -> Meshward_Agent_V1_Prefix {
        var message = Meshward_Agent_V1_Prefix()
        message.address = Data(prefix.address.bytes)
        message.length = UInt32(prefix.length)
        return message
    }

    static func decode(_ message: Meshward_Agent_V1_Prefix) throws(WireError) -> IPPrefix {
        let base = try address(message.address, "prefix")
        guard let prefix = IPPrefix(address: base, length: Int(message.length)) else {
            throw WireError.malformed("a prefix \(base)/\(message.length)")
        }
        return prefix
    }

    static func address(_ data: Data, _ what: String) throws(WireError) -> IPAddress {
        guard let address = IPAddress(bytes: Array(data)) else {
            throw WireError.malformed("a \(what) address of \(data.count) bytes")
        }
        return address
    }

    static func direction(_ text: String) throws(WireError) -> PolicyDirection {
        guard let direction = PolicyDirection(rawValue: text) else {
            throw WireError.malformed("a policy direction `\(text)`")
        }
        return direction
    }
}

/// A message from the other side that does not describe a Kernel value.
public enum WireError: Error, Sendable, CustomStringConvertible {
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let what): "the agent wire carried \(what)"
        }
    }
}
