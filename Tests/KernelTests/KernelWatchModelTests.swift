import Kernel
import MeshwardCore
import MeshwardTestSupport
import Testing

@Suite("KernelWatchModel")
struct KernelWatchModelTests {
    /// A policy a -> 198.18.7.`index`, outbound, pinning SPI 0x100 + `index` + `spiOffset`.
    static func policy(_ index: Int, spiOffset: UInt32 = 0) -> SecurityPolicy {
        TestValues.policy(
            to: TestValues.address("198.18.7.\(index)"), spi: 0x100 + UInt32(index) + spiOffset)
    }

    static func association(_ spi: UInt32, keyByte: UInt8 = 1) -> SecurityAssociation {
        TestValues.fixedAssociation(spi: spi, keyByte: keyByte)
    }

    /// A model holding policies 1 ... `count`, recorded one at a time (seqs 1 ... `count`).
    static func model(count: Int, ringCapacity: Int = 64, streamCapacity: Int = 64) -> KernelWatchModel {
        let model = KernelWatchModel(node: "a", ringCapacity: ringCapacity, streamCapacity: streamCapacity)
        for index in 1...max(count, 1) where count > 0 { model.record(.policy(policy(index))) }
        return model
    }

    static func changes(_ messages: [WatchMessage]) -> [(seq: UInt64, change: KernelChange)] {
        messages.compactMap { message in
            if case .change(let seq, let change) = message { (seq, change) } else { nil }
        }
    }

    @Test("a position still in the ring is resumed by replaying the changes after it, without a snapshot")
    func replayFromTheRing() async throws {
        let model = Self.model(count: 5)
        let stream = model.watch(from: WatchPosition(epoch: model.epoch, seq: 2))
        let replayed = try await stream.first(3)
        #expect(replayed == (3...5).map { .change(seq: UInt64($0), .policy(Self.policy($0))) })
        model.record(.policy(Self.policy(6)))
        #expect(try await stream.first(1) == [.change(seq: 6, .policy(Self.policy(6)))])
    }

    enum StalePosition: String, CaseIterable, CustomTestStringConvertible {
        case none, anotherEpoch, olderThanTheRing, aheadOfTheModel
        var testDescription: String { rawValue }
    }

    @Test("a position that cannot be replayed gets the snapshot and snapshotEnd", arguments: StalePosition.allCases)
    func unreplayablePositionGetsASnapshot(_ stale: StalePosition) async throws {
        // Ring of 2 keeps at most 4 changes: after 10, seqs 7 ... 10 at most.
        let model = Self.model(count: 10, ringCapacity: 2)
        let position: WatchPosition? =
            switch stale {
            case .none: nil
            case .anotherEpoch: WatchPosition(epoch: model.epoch &+ 1, seq: 9)
            case .olderThanTheRing: WatchPosition(epoch: model.epoch, seq: 2)
            case .aheadOfTheModel: WatchPosition(epoch: model.epoch, seq: 11)
            }
        let messages = try await model.watch(from: position).first(11)
        #expect(messages.dropLast() == (1...10).map { .snapshot(.policy(Self.policy($0))) }[...])
        #expect(messages.last == .snapshotEnd(WatchPosition(epoch: model.epoch, seq: 10), bootID: nil))
    }

    @Test("a change recorded twice, or the deletion of an absent object, changes nothing and gets no seq")
    func repeatedChangeGetsNoSeq() {
        let model = Self.model(count: 1)
        let sa = Self.association(0x300)
        #expect(model.record(.securityAssociation(sa)) == 2)
        #expect(model.record(.securityAssociation(sa)) == nil)
        #expect(model.record(.policy(Self.policy(1))) == nil)
        #expect(model.record(.policyDeleted(Self.policy(2).identifier)) == nil)
        #expect(model.record(.securityAssociationDeleted(Self.association(0x301).identifier)) == nil)
        #expect(model.position.seq == 2)
        #expect(model.record(.policy(Self.policy(1, spiOffset: 50))) == 3)
    }

    @Test(
        "resynchronize emits exactly the differences, deletions first, as ordinary changes; lost events counted apart")
    func resynchronizeEmitsTheDifferences() async throws {
        let model = Self.model(count: 3)
        model.record(.securityAssociation(Self.association(0x300)))
        let stream = model.watch(from: model.position)
        // The dump: policy 1 unchanged, 2 changed, 3 gone, 4 new; SA 0x300 gone with a new key
        // fingerprint on 0x301.
        let dump = WatchedObjects(
            securityAssociations: [Self.association(0x301, keyByte: 9)],
            policies: [Self.policy(1), Self.policy(2, spiOffset: 50), Self.policy(4)])
        let position = model.resynchronize(to: dump, lostEvents: true)
        #expect(position == WatchPosition(epoch: model.epoch, seq: 9))
        let changes = Self.changes(try await stream.first(5))
        #expect(changes.map(\.seq) == [5, 6, 7, 8, 9])
        #expect(
            changes.map(\.change) == [
                .securityAssociationDeleted(Self.association(0x300).identifier),
                .policyDeleted(Self.policy(3).identifier),
                .securityAssociation(Self.association(0x301, keyByte: 9).watched),
                .policy(Self.policy(2, spiOffset: 50)),
                .policy(Self.policy(4)),
            ])
        #expect(model.objects == dump)
        #expect(model.resynchronize(to: dump) == position)
        #expect(model.resynchronizations == (all: 2, lostEvents: 1))
    }

    @Test(
        "a stream whose queue fills ends with an overflow naming the last position it queued; resuming from there loses nothing"
    )
    func overflowEndsTheStreamAndResumingLosesNothing() async throws {
        let model = Self.model(count: 0, streamCapacity: 3)
        let stream = model.watch(from: model.position)
        for index in 1...10 { model.record(.policy(Self.policy(index))) }
        let first = try await stream.untilEnd()
        let overflow = try #require(first.ending as? KernelWatchError)
        guard case .overflow(_, let capacity, let position) = overflow else {
            Issue.record("ended with \(overflow), not an overflow")
            return
        }
        #expect(capacity == 3)
        let queued = Self.changes(first.elements).map(\.seq)
        #expect(queued == [1, 2, 3])
        #expect(position == WatchPosition(epoch: model.epoch, seq: 3))
        #expect(model.overflows == 1)
        #expect(model.streamCount == 0)

        let resumed = Self.changes(try await model.watch(from: position).first(7))
        #expect(queued + resumed.map(\.seq) == Array(1...10))
        #expect(resumed.map(\.change) == (4...10).map { .policy(Self.policy($0)) })
    }

    @Test("the digest equals WatchDigest.of(upserts) after any sequence of changes")
    func digestFollowsRandomChanges() {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("KernelWatchModelTests.digestFollowsRandomChanges seed \(seed)")
        var random = SeededRandom(seed: seed)
        let model = KernelWatchModel(node: "a", ringCapacity: 16)
        for step in 0..<2_000 {
            let index = Int.random(in: 1...12, using: &random)
            let change: KernelChange =
                switch Int.random(in: 0..<4, using: &random) {
                case 0: .policy(Self.policy(index, spiOffset: UInt32.random(in: 0...2, using: &random)))
                case 1: .policyDeleted(Self.policy(index).identifier)
                case 2:
                    .securityAssociation(
                        Self.association(0x200 + UInt32(index), keyByte: UInt8.random(in: 1...3, using: &random)))
                default: .securityAssociationDeleted(Self.association(0x200 + UInt32(index)).identifier)
                }
            model.record(change)
            let objects = model.objects
            guard model.digest == WatchDigest.of(objects.upserts) else {
                Issue.record("seed \(seed), step \(step): digest \(model.digest) after \(change)")
                return
            }
        }
        let expected = model.objects
        let rebuilt = WatchedObjects().changes(to: expected).reduce(into: WatchedObjects()) { $0.apply($1) }
        #expect(rebuilt.digest == expected.digest, "seed \(seed)")
    }

    @Test("progress carries the statistics only when they changed on that stream")
    func progressCarriesChangedStatisticsOnly() async throws {
        let model = Self.model(count: 1)
        model.setBootID("boot-1")
        let early = model.watch(from: model.position)
        model.sendProgress(statistics: ["XfrmInNoStates": 1])
        model.sendProgress(statistics: ["XfrmInNoStates": 1])
        let late = model.watch(from: model.position)
        model.sendProgress()
        model.sendProgress(statistics: ["XfrmInNoStates": 2])

        let progress = { (messages: [WatchMessage]) in
            messages.compactMap { message -> WatchProgress? in
                if case .progress(let progress) = message { progress } else { nil }
            }
        }
        let earlyProgress = progress(try await early.first(4))
        #expect(earlyProgress.map(\.statistics) == [["XfrmInNoStates": 1], nil, nil, ["XfrmInNoStates": 2]])
        #expect(earlyProgress.allSatisfy { $0.bootID == "boot-1" && $0.position == model.position })
        #expect(earlyProgress.allSatisfy { $0.digest == WatchDigest.of([.policy(Self.policy(1))]) })
        let lateProgress = progress(try await late.first(2))
        #expect(lateProgress.map(\.statistics) == [["XfrmInNoStates": 1], ["XfrmInNoStates": 2]])
    }

    @Test("a stream its receiver stops reading is removed from the model")
    func terminationRemovesTheStream() async throws {
        let model = Self.model(count: 1)
        var stream: AsyncThrowingStream<WatchMessage, any Error>? = model.watch(from: nil)
        #expect(model.streamCount == 1)
        stream = nil
        #expect(stream == nil)
        #expect(model.streamCount == 0)
        let reader = Task { [model] in try await model.watch(from: model.position).untilEnd() }
        while model.streamCount == 0 { await Task.yield() }
        reader.cancel()
        _ = await reader.result
        #expect(model.streamCount == 0)
    }

    @Test("stop ends every stream with the reason")
    func stopEndsEveryStream() async throws {
        let model = Self.model(count: 1)
        let stream = model.watch(from: model.position)
        model.stop(reason: "socket closed")
        let ended = try await stream.untilEnd()
        #expect((ended.ending as? KernelWatchError) == .stopped(node: "a", reason: "socket closed"))
        #expect(model.streamCount == 0)
    }
}
