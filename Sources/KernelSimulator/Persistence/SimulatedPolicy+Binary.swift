import Kernel
import MeshwardCore

/// A policy in a node's body: selector, direction, priority, template and insertion order.
extension SimulatedPolicy {
    func encode(into writer: inout BinaryWriter) {
        writer.write(source)
        writer.write(destination)
        writer.write(traffic.transport?.number ?? 0)
        writer.write(traffic.sourcePort)
        writer.write(traffic.destinationPort)
        writer.write(direction.binaryCode)
        writer.write(priority)
        writer.write(templateSource)
        writer.write(templateDestination)
        writer.write(templateSPI?.rawValue)
        writer.write(templateReqid.rawValue)
        writer.write(templateIsOptional)
        writer.write(insertionOrder)
    }

    init(reading reader: inout BinaryReader) throws(BinaryDecodingError) {
        source = try reader.readPrefix()
        destination = try reader.readPrefix()
        let transportStart = reader.offset
        let protocolNumber = try reader.read(UInt8.self)
        let transport = TransportProtocol.allCases.first { $0.number == protocolNumber }
        guard transport != nil || protocolNumber == 0 else {
            throw .invalid("transport protocol \(protocolNumber)", offset: transportStart)
        }
        traffic = TrafficMatch(
            transport: transport, sourcePort: try reader.readOptional(UInt16.self),
            destinationPort: try reader.readOptional(UInt16.self))
        let directionStart = reader.offset
        let directionCode = try reader.read(UInt8.self)
        guard let direction = PolicyDirection(binaryCode: directionCode) else {
            throw .invalid("policy direction \(directionCode)", offset: directionStart)
        }
        self.direction = direction
        priority = try reader.read(UInt32.self)
        templateSource = try reader.readAddress()
        templateDestination = try reader.readAddress()
        templateSPI = try reader.readOptional(UInt32.self).map(SPI.init(rawValue:))
        templateReqid = Reqid(try reader.read(UInt32.self))
        templateIsOptional = try reader.readBool()
        insertionOrder = try reader.read(UInt64.self)
    }
}

extension PolicyDirection {
    /// The direction's code in a node's body; fixed forever.
    var binaryCode: UInt8 {
        switch self {
        case .inbound: 1
        case .outbound: 2
        case .forward: 3
        }
    }

    init?(binaryCode: UInt8) {
        switch binaryCode {
        case 1: self = .inbound
        case 2: self = .outbound
        case 3: self = .forward
        default: return nil
        }
    }
}
