import Kernel
import MeshwardCore
import Testing

/// Addresses, SAs and policies the behavioural suite writes (198.18.0.0/15, the benchmarking
/// range, as the design asks of tests).
enum TestValues {
    static let alpha = address("198.18.0.1")
    static let bravo = address("198.18.0.2")
    static let charlie = address("198.18.0.3")
    static let ownReqid = Reqid.meshwardDefault
    static let foreignReqid = Reqid(0x1234)

    static func address(_ text: String) -> IPAddress {
        guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
        return address
    }

    static func key(_ cipher: Cipher = .aesGCM256) throws -> KeyMaterial {
        try KeyMaterial.random(count: cipher.keyLength)
    }

    static func association(
        from source: IPAddress = alpha, to destination: IPAddress = bravo, spi: UInt32,
        reqid: Reqid = ownReqid
    ) throws -> SecurityAssociation {
        SecurityAssociation(
            source: source, destination: destination, spi: SPI(spi), reqid: reqid, cipher: .aesGCM256,
            key: .material(try key())
        )
    }

    static func selector(
        from source: IPAddress = alpha, to destination: IPAddress = bravo,
        traffic: TrafficMatch = .any
    ) -> PolicySelector {
        PolicySelector(source: IPPrefix(host: source), destination: IPPrefix(host: destination), traffic: traffic)
    }

    static func policy(
        _ direction: PolicyDirection = .outbound, from source: IPAddress = alpha,
        to destination: IPAddress = bravo, traffic: TrafficMatch = .any, spi: UInt32? = nil,
        optional: Bool = false, reqid: Reqid = ownReqid,
        priority: UInt32 = SecurityPolicy.defaultPriority
    ) -> SecurityPolicy {
        SecurityPolicy(
            selector: selector(from: source, to: destination, traffic: traffic), direction: direction,
            priority: priority,
            template: PolicyTemplate(
                family: source.family, spi: spi.map { SPI($0) }, reqid: reqid, isOptional: optional)
        )
    }
}

extension TestValues {
    static let ipv6Alpha = address("2001:db8::1")
    static let ipv6Bravo = address("2001:db8::2")

    /// A fixed key for table rows (which must be built without throwing); `byte` tells keys apart.
    static func fixedKey(_ byte: UInt8, cipher: Cipher = .aesGCM256) -> SAKey {
        .material(KeyMaterial(bytes: [UInt8](repeating: byte, count: cipher.keyLength)))
    }

    /// An SA with a fixed key, for table rows.
    static func fixedAssociation(
        from source: IPAddress = alpha, to destination: IPAddress = bravo, spi: UInt32,
        keyByte: UInt8 = 1, reqid: Reqid = ownReqid
    ) -> SecurityAssociation {
        SecurityAssociation(
            source: source, destination: destination, spi: SPI(spi), reqid: reqid, cipher: .aesGCM256,
            key: fixedKey(keyByte)
        )
    }
}
