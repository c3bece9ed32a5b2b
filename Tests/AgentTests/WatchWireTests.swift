import AgentWire
import Kernel
import MeshwardCore
import Testing

/// The watch stream's messages on the wire (`WireCodec+Watch`), without a connection.
@Suite("the watch stream's wire codec")
struct WatchWireTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let message: WatchMessage
        var testDescription: String { name }
    }

    static let sa = AgentFixtures.association(spi: 0x1000, key: KeyMaterial(bytes: Array(repeating: 7, count: 36)))
    static let policy = SecurityPolicy(
        selector: PolicySelector(
            source: IPPrefix(host: AgentFixtures.alpha), destination: IPPrefix(host: AgentFixtures.bravo)),
        direction: .outbound,
        template: PolicyTemplate(family: .ipv4, spi: SPI(0x1000), reqid: .meshwardDefault, isOptional: false))
    static let position = WatchPosition(epoch: 0xfeed_beef_0000_0001, seq: 41)

    @Test(
        "each kind of watch message reads back as it was written, an SA with its key as a fingerprint",
        arguments: [
            Case(name: "a snapshot SA", message: .snapshot(.securityAssociation(sa.watched))),
            Case(name: "a snapshot policy", message: .snapshot(.policy(policy))),
            Case(name: "the snapshot's end", message: .snapshotEnd(position, bootID: "boot-1")),
            Case(name: "the snapshot's end without a boot ID", message: .snapshotEnd(position, bootID: nil)),
            Case(name: "an SA upsert", message: .change(seq: 42, .securityAssociation(sa.watched))),
            Case(name: "a policy upsert", message: .change(seq: 43, .policy(policy))),
            Case(name: "an SA deletion", message: .change(seq: 44, .securityAssociationDeleted(sa.identifier))),
            Case(name: "a policy deletion", message: .change(seq: 45, .policyDeleted(policy.identifier))),
            Case(
                name: "a progress with statistics",
                message: .progress(
                    WatchProgress(
                        position: position, bootID: "boot-1", digest: .max, statistics: ["XfrmInNoStates": 3]))),
            Case(
                name: "a progress whose statistics did not change",
                message: .progress(WatchProgress(position: position, bootID: "boot-1", digest: 1, statistics: nil))),
            Case(
                name: "a progress whose statistics changed to none",
                message: .progress(WatchProgress(position: position, bootID: nil, digest: 1, statistics: [:]))),
        ])
    func roundTrip(_ row: Case) throws {
        let event = WireCodec.event(row.message)
        let bytes: [UInt8] = try event.serializedBytes()
        let read = try WireCodec.message(from: Meshward_Agent_V1_WatchEvent(serializedBytes: bytes))
        #expect(read == row.message)
    }

    @Test("an SA written with its key bytes goes out with its fingerprint only, and counters zero")
    func keyBytesNeverLeave() throws {
        var counted = Self.sa
        counted.counters = SACounters(bytes: 100, packets: 2, addTime: 5, useTime: 6)
        let event = WireCodec.event(.change(seq: 1, .securityAssociation(counted)))
        #expect(event.change.upsertSecurityAssociation.keyMaterial.isEmpty)
        #expect(event.change.upsertSecurityAssociation.keyFingerprint == Self.sa.key.fingerprint)
        #expect(try WireCodec.message(from: event) == .change(seq: 1, .securityAssociation(Self.sa.watched)))
    }

    @Test("a watch event of no kind, or a snapshot item without an object, is refused")
    func emptyEventsRefused() {
        #expect(throws: WireError.self) { try WireCodec.message(from: Meshward_Agent_V1_WatchEvent()) }
        var empty = Meshward_Agent_V1_WatchEvent()
        empty.snapshot = Meshward_Agent_V1_WatchObject()
        #expect(throws: WireError.self) { try WireCodec.message(from: empty) }
    }
}
