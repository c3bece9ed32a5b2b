import Foundation
import Kernel
import MeshwardCore
import Testing

/// The receiver's copy of one watched node (`WatchReceiver`): what it takes in, when it asks
/// for a snapshot, what it calls drift, and when it stands for the node.
@Suite("WatchReceiver")
struct WatchReceiverTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let epoch: UInt64 = 0xabc

    static func policy(_ octet: Int, direction: PolicyDirection = .outbound) -> SecurityPolicy {
        let here = IPAddress("198.18.0.1")!
        let there = IPAddress("198.18.0.\(octet)")!
        return SecurityPolicy(
            selector: PolicySelector(
                source: IPPrefix(host: here), destination: IPPrefix(host: there)),
            direction: direction,
            template: PolicyTemplate(
                source: here, destination: there, spi: nil, reqid: .meshwardDefault, isOptional: false))
    }

    static func sa(_ spi: UInt32, key: String = "k") -> SecurityAssociation {
        SecurityAssociation(
            source: IPAddress("198.18.0.1")!, destination: IPAddress("198.18.0.2")!, spi: SPI(spi),
            reqid: .meshwardDefault, cipher: .aesGCM256, key: .fingerprint(key))
    }

    /// A receiver that took a snapshot of `objects` at seq `seq` and a fresh reading of them.
    static func live(_ objects: [KernelChange], seq: UInt64 = 3) -> WatchReceiver {
        var receiver = WatchReceiver(node: "n1")
        for change in objects { _ = receiver.receive(.snapshot(change), at: t0) }
        _ = receiver.receive(.snapshotEnd(WatchPosition(epoch: epoch, seq: seq), bootID: "boot-1"), at: t0)
        var reading = NodeObservation(
            securityAssociations: objects.compactMap {
                if case .securityAssociation(let sa) = $0 { return sa }
                return nil
            },
            policies: objects.compactMap {
                if case .policy(let policy) = $0 { return policy }
                return nil
            })
        reading.watchPosition = WatchPosition(epoch: epoch, seq: seq)
        receiver.adopt(reading, at: t0)
        return receiver
    }

    @Test("a copy stands for its node only once it has a position and a fresh reading")
    func standsOnlyWithPositionAndReading() {
        var receiver = WatchReceiver(node: "n1")
        #expect(receiver.observation() == nil)
        _ = receiver.receive(.snapshot(.policy(Self.policy(2))), at: Self.t0)
        _ = receiver.receive(.snapshotEnd(WatchPosition(epoch: Self.epoch, seq: 1), bootID: nil), at: Self.t0)
        #expect(receiver.observation() == nil, "no fresh reading yet: no counters or foreign SPIs to go with it")
        receiver.adopt(NodeObservation(policies: [Self.policy(2)]), at: Self.t0)
        #expect(receiver.observation()?.policies == [Self.policy(2)])
        #expect(receiver.observation()?.watchPosition == WatchPosition(epoch: Self.epoch, seq: 1))
    }

    @Test("numbered changes apply in order; a change already seen is skipped; a gap asks for a snapshot")
    func changesInOrderAndGaps() {
        var receiver = Self.live([.policy(Self.policy(2))])
        #expect(receiver.receive(.change(seq: 4, .policy(Self.policy(3))), at: Self.t0) == .drift)
        #expect(receiver.receive(.change(seq: 4, .policy(Self.policy(3))), at: Self.t0) == .none)
        #expect(receiver.observation()?.policies.count == 2)
        if case .resnapshot = receiver.receive(.change(seq: 6, .policyDeleted(Self.policy(2).identifier)), at: Self.t0)
        {
        } else {
            Issue.record("a gap from seq 4 to 6 did not ask for a snapshot")
        }
    }

    @Test("the changes of this controller's own batch are not drift; a change after them is")
    func ownBatchIsNotDrift() {
        var receiver = Self.live([.policy(Self.policy(2))])
        receiver.applied(at: WatchPosition(epoch: Self.epoch, seq: 5))
        #expect(receiver.observation() == nil, "the copy waits for the batch's changes")
        #expect(receiver.receive(.change(seq: 4, .policy(Self.policy(3))), at: Self.t0) == .none)
        #expect(receiver.receive(.change(seq: 5, .policy(Self.policy(4))), at: Self.t0) == .none)
        #expect(receiver.observation()?.policies.count == 3)
        #expect(receiver.receive(.change(seq: 6, .policyDeleted(Self.policy(4).identifier)), at: Self.t0) == .drift)
    }

    @Test("progress whose digest differs from the copy's at the same seq asks for a snapshot and is counted")
    func digestMismatch() {
        var receiver = Self.live([.policy(Self.policy(2))])
        let matching = WatchProgress(
            position: WatchPosition(epoch: Self.epoch, seq: 3), bootID: "boot-1",
            digest: WatchDigest.of([.policy(Self.policy(2))]))
        #expect(receiver.receive(.progress(matching), at: Self.t0) == .none)
        var differing = matching
        differing.digest ^= 1
        #expect(
            receiver.receive(.progress(differing), at: Self.t0)
                == .resnapshot(reason: "the progress digest differs from this copy's"))
        #expect(receiver.digestMismatches == 1)
    }

    @Test("progress of another epoch or boot ID asks for a snapshot")
    func epochOrBootChange() {
        var receiver = Self.live([])
        let digest = WatchDigest.of([])
        #expect(
            receiver.receive(
                .progress(WatchProgress(position: WatchPosition(epoch: 7, seq: 0), bootID: "boot-1", digest: digest)),
                at: Self.t0) == .resnapshot(reason: "the watch's epoch changed (the agent restarted)"))
        #expect(
            receiver.receive(
                .progress(
                    WatchProgress(position: WatchPosition(epoch: Self.epoch, seq: 3), bootID: "boot-2", digest: digest)),
                at: Self.t0) == .resnapshot(reason: "the host's boot ID changed"))
    }

    @Test("the first snapshot of a node never streamed nor read is not drift; a later one that differs is")
    func firstSnapshotIsNotDrift() {
        var receiver = WatchReceiver(node: "n1")
        _ = receiver.receive(.snapshot(.policy(Self.policy(2))), at: Self.t0)
        #expect(
            receiver.receive(.snapshotEnd(WatchPosition(epoch: Self.epoch, seq: 1), bootID: "boot-1"), at: Self.t0)
                == .none)
        #expect(receiver.position == WatchPosition(epoch: Self.epoch, seq: 1))
        #expect(
            receiver.receive(.snapshotEnd(WatchPosition(epoch: Self.epoch, seq: 2), bootID: "boot-1"), at: Self.t0)
                == .drift, "an empty snapshot after one policy")
    }

    @Test("a snapshot that differs from the copy is drift; one that matches is not")
    func snapshotDrift() {
        var receiver = Self.live([.policy(Self.policy(2))])
        _ = receiver.receive(.snapshot(.policy(Self.policy(2))), at: Self.t0)
        #expect(receiver.receive(.snapshotEnd(WatchPosition(epoch: 9, seq: 1), bootID: "boot-1"), at: Self.t0) == .none)
        #expect(
            receiver.receive(.snapshotEnd(WatchPosition(epoch: 9, seq: 1), bootID: "boot-1"), at: Self.t0) == .drift)
        #expect(receiver.snapshots == 3)
    }

    @Test("a reading made from the copy carries the counters and key of the last fresh reading for SAs unchanged since")
    func countersFromLastReading() {
        var receiver = WatchReceiver(node: "n1")
        var counted = Self.sa(0x100)
        counted.counters.packets = 42
        _ = receiver.receive(.snapshot(.securityAssociation(counted.watched)), at: Self.t0)
        _ = receiver.receive(.snapshotEnd(WatchPosition(epoch: Self.epoch, seq: 1), bootID: nil), at: Self.t0)
        receiver.adopt(NodeObservation(securityAssociations: [counted]), at: Self.t0)
        #expect(receiver.observation()?.securityAssociations.first?.counters.packets == 42)
        _ = receiver.receive(.change(seq: 2, .securityAssociation(Self.sa(0x200))), at: Self.t0)
        let added = receiver.observation()?.securityAssociations.first { $0.spi == SPI(0x200) }
        #expect(added?.counters == .zero)
    }

    @Test("a fresh reading older than the copy does not move it back; a batch with no position needs a fresh reading")
    func adoptOrderAndUnknownBatch() {
        var receiver = Self.live([.policy(Self.policy(2))], seq: 5)
        var older = NodeObservation()
        older.watchPosition = WatchPosition(epoch: Self.epoch, seq: 4)
        receiver.adopt(older, at: Self.t0)
        #expect(receiver.observation()?.policies == [Self.policy(2)])
        receiver.applied(at: nil)
        #expect(receiver.observation() == nil)
    }
}
