import Foundation
import Kernel
import MeshwardCore
import Reconciler
import Testing

/// `ChannelRecord.drift(in:)`: what the kernels lack or hold differently from a record, judged
/// against the indexed observations.
@Suite("Channel drift")
struct ChannelDriftTests {
    static let id = ChannelID(from: "web", to: "db", family: .ipv4)
    static let source = IPAddress("198.18.0.1")!
    static let destination = IPAddress("198.18.0.2")!
    static let key = KeyMaterial(bytes: Array(repeating: 1, count: Cipher.aesGCM256.keyLength))

    static func record() -> ChannelRecord {
        let generation = Generation(
            channel: id, number: 3, spi: SPI(0x120), cipher: .aesGCM256, key: key, source: source,
            destination: destination, createdAt: Date(timeIntervalSince1970: 0), state: .active,
            activatedAt: Date(timeIntervalSince1970: 0))
        return ChannelRecord(
            id: id, step: .established, stepChangedAt: Date(timeIntervalSince1970: 0), generations: [generation])
    }

    static func association(key: KeyMaterial = key) -> SecurityAssociation {
        SecurityAssociation(
            source: source, destination: destination, spi: SPI(0x120), reqid: Reqid(7), cipher: .aesGCM256,
            key: .fingerprint(key.fingerprint))
    }

    static func outbound(spi: SPI) -> SecurityPolicy {
        SecurityPolicy(
            selector: PolicySelector(
                source: IPPrefix(host: source), destination: IPPrefix(host: destination), traffic: .any),
            direction: .outbound,
            template: PolicyTemplate(family: .ipv4, spi: spi, reqid: Reqid(7), isOptional: false))
    }

    @Test("kernels holding the record's SA on both ends and the pinning policy show no drift")
    func matchingKernelsNoDrift() {
        let observed = ObservedObjects([
            "web": NodeObservation(
                securityAssociations: [Self.association()], policies: [Self.outbound(spi: SPI(0x120))]),
            "db": NodeObservation(securityAssociations: [Self.association()]),
        ])
        #expect(Self.record().drift(in: observed).isEmpty)
    }

    @Test("a missing SA, another key, an unpinned switch and a silent end are each named")
    func everyKindOfDriftNamed() {
        let other = KeyMaterial(bytes: Array(repeating: 2, count: Cipher.aesGCM256.keyLength))
        let drifted = ObservedObjects([
            "web": NodeObservation(
                securityAssociations: [Self.association(key: other)], policies: [Self.outbound(spi: SPI(0x999))]),
            "db": NodeObservation(),
        ])
        #expect(
            Self.record().drift(in: drifted) == [
                "web holds another key or cipher under spi \(SPI(0x120).hex)",
                "db lacks the SA spi \(SPI(0x120).hex) of generation 3",
                "web has no outbound policy pinning spi \(SPI(0x120).hex)",
            ])
        let silent = ObservedObjects([
            "web": NodeObservation(
                securityAssociations: [Self.association()], policies: [Self.outbound(spi: SPI(0x120))])
        ])
        #expect(Self.record().drift(in: silent) == ["node db did not answer"])
    }
}
