import Kernel
import KernelSimulator
import MeshwardCore
import MeshwardTestSupport
import Testing

@Suite("The simulated kernel's watch")
struct WatchTests {
    static let channel = Channel(from: "a", to: "b")
    static let generation = Generation(0x101)

    /// The five operations of a new channel a -> b on node a (outbound SA and policy) and on b.
    static var outboundBatch: [KernelOperation] {
        [
            .addSA(channel.association(generation)), .addPolicy(channel.outboundPolicy(generation)),
            .updatePolicy(channel.outboundPolicy(Generation(0x102))),
        ]
    }

    static func fleet() -> SimulatedFleet {
        SimulatedFleet(state: FleetValues.state(["a", "b"]))
    }

    /// The changes of a watch's messages, in order, with their seqs.
    static func changes(_ messages: [WatchMessage]) -> [(seq: UInt64, change: KernelChange)] {
        messages.compactMap { message in
            if case .change(let seq, let change) = message { (seq, change) } else { nil }
        }
    }

    @Test("a node's watch sees an apply's changes in order, with consecutive seqs, and the apply reports the last")
    func applyIsSeenInOrder() async throws {
        let fleet = Self.fleet()
        let kernel = fleet.kernel(for: "a", reqid: FleetValues.reqid)
        let model = try await kernel.startWatching()
        let stream = try #require(kernel.watch(from: model.position))
        let batch = try await kernel.applyReportingPosition(Self.outboundBatch, deadline: .now + .seconds(5))
        #expect(batch.results.allSatisfy { $0.outcome == .applied })
        let changes = Self.changes(try await stream.first(3))
        #expect(changes.map(\.seq) == [1, 2, 3])
        #expect(
            changes.map(\.change) == [
                .securityAssociation(Self.channel.association(Self.generation).watched),
                .policy(Self.channel.outboundPolicy(Self.generation)),
                .policy(Self.channel.outboundPolicy(Generation(0x102))),
            ])
        #expect(batch.position == WatchPosition(epoch: model.epoch, seq: 3))
    }

    @Test("every kernel of a node and owner shares one model; another fleet's model has another epoch")
    func kernelsOfOneNodeShareTheModel() async throws {
        let fleet = Self.fleet()
        let first = try await fleet.kernel(for: "a", reqid: FleetValues.reqid).startWatching()
        let second = try await fleet.kernel(for: "a", reqid: FleetValues.reqid).startWatching()
        let reloaded = try await SimulatedFleet(state: fleet.state).kernel(for: "a", reqid: FleetValues.reqid)
            .startWatching()
        #expect(first === second)
        #expect(reloaded.epoch != first.epoch)
    }

    @Test("a flush and a policy deleted by hand are seen as deletions; foreign objects never appear")
    func outOfBandChangesAreSeen() async throws {
        let fleet = Self.fleet()
        let kernel = fleet.kernel(for: "a", reqid: FleetValues.reqid)
        _ = try await kernel.apply(Array(Self.outboundBatch.prefix(2)))
        let foreign = SecurityAssociation(
            source: FleetValues.address(of: "a"), destination: FleetValues.address(of: "b"), spi: SPI(0x999),
            reqid: FleetValues.foreignReqid, cipher: .aesGCM256, key: Self.generation.key)
        fleet.withState { _ = $0.apply(.addSA(foreign), on: "a") }
        let model = try await kernel.startWatching()
        let stream = try #require(kernel.watch(from: nil))
        let snapshot = try await stream.first(3)
        #expect(
            snapshot == [
                .snapshot(.securityAssociation(Self.channel.association(Self.generation).watched)),
                .snapshot(.policy(Self.channel.outboundPolicy(Self.generation))),
                .snapshotEnd(WatchPosition(epoch: model.epoch, seq: 2), bootID: nil),
            ])

        #expect(fleet.deletePolicyByHand(Self.channel.outboundPolicy(Self.generation).identifier, on: "a"))
        fleet.flushSecurityAssociations(on: "a")
        fleet.flushPolicies(on: "a")
        let changes = Self.changes(try await stream.first(2))
        #expect(
            changes.map(\.change) == [
                .policyDeleted(Self.channel.outboundPolicy(Self.generation).identifier),
                .securityAssociationDeleted(Self.channel.association(Self.generation).identifier),
            ])
        #expect(changes.map(\.seq) == [3, 4])
        #expect(model.position.seq == 4)
    }

    @Test("a wipe (reboot, re-image) is seen as the deletion of every owned object")
    func wipeIsSeen() async throws {
        let fleet = Self.fleet()
        let kernel = fleet.kernel(for: "a", reqid: FleetValues.reqid)
        let model = try await kernel.startWatching()
        _ = try await kernel.apply(Self.outboundBatch)
        let stream = try #require(kernel.watch(from: model.position))
        fleet.wipe(node: "a")
        let changes = Self.changes(try await stream.first(2))
        #expect(Set(changes.map(\.change).filter(\.isDeletion).map(\.object)).count == 2)
        #expect(model.objects.count == 0)
    }

    @Test("the lost-events fault is recovered by one resync whose changes make the receiver's copy equal the kernel")
    func lostEventsAreRecoveredByOneResync() async throws {
        let fleet = Self.fleet()
        let kernel = fleet.kernel(for: "a", reqid: FleetValues.reqid)
        let toC = Channel(from: "a", to: "c").outboundPolicy(Generation(0x200))
        _ = try await kernel.apply([.addPolicy(toC)])
        let model = try await kernel.startWatching()
        let stream = try #require(kernel.watch(from: nil))
        var copy = WatchedObjects()
        for message in try await stream.first(2) {
            if case .snapshot(let change) = message { copy.apply(change) }
        }

        fleet.loseWatchEvents(on: "a")
        let positionBefore = model.position
        _ = try await kernel.apply(Self.outboundBatch)
        fleet.deletePolicyByHand(toC.identifier, on: "a")
        #expect(model.position == positionBefore)

        fleet.recoverLostWatchEvents(on: "a")
        let expected = model.position.seq - positionBefore.seq
        #expect(expected == 3)
        for (_, change) in Self.changes(try await stream.first(Int(expected))) { copy.apply(change) }
        let fresh = try await fleet.kernel(for: "a", reqid: FleetValues.reqid).observe()
        #expect(copy == WatchedObjects(securityAssociations: fresh.securityAssociations, policies: fresh.policies))
        #expect(model.resynchronizations.lostEvents == 1)
        #expect(fresh.watchPosition == model.position)
    }

    @Test("an observation of a watched node resynchronises its model and reports the position it matches")
    func observationReportsThePosition() async throws {
        let fleet = Self.fleet()
        let kernel = fleet.kernel(for: "a", reqid: FleetValues.reqid)
        #expect(try await kernel.observe().watchPosition == nil)
        let model = try await kernel.startWatching()
        _ = try await kernel.apply(Self.outboundBatch)
        let observation = try await kernel.observe()
        #expect(observation.watchPosition == model.position)
        #expect(
            model.objects
                == WatchedObjects(
                    securityAssociations: observation.securityAssociations, policies: observation.policies))
    }

    @Test("a node that stops answering ends its streams, and a new stream ends at once while it is down")
    func unreachableNodeEndsItsStreams() async throws {
        let fleet = Self.fleet()
        let kernel = fleet.kernel(for: "a", reqid: FleetValues.reqid)
        let stream = try #require(kernel.watch(from: nil))
        fleet.setReachable("a", false)
        let ended = try await stream.untilEnd()
        #expect(
            ended.elements == [
                .snapshotEnd(try #require(fleet.watchModel(node: "a", reqid: FleetValues.reqid)).position, bootID: nil)
            ])
        #expect(ended.ending is KernelWatchError)
        let refused = try await #require(kernel.watch(from: nil)).untilEnd()
        #expect(refused.elements.isEmpty)
        #expect(refused.ending is KernelError)
    }

    @Test(
        "a restarted agent's watch (restartWatching) is a new model of a new epoch holding the same objects: the old one's streams end, and a stream from an old position gets a snapshot"
    )
    func restartedWatchHasANewEpoch() async throws {
        let fleet = Self.fleet()
        let kernel = fleet.kernel(for: "a", reqid: FleetValues.reqid)
        let old = try await kernel.startWatching()
        _ = try await kernel.apply(Self.outboundBatch)
        let stream = try #require(kernel.watch(from: old.position))
        fleet.restartWatching(node: "a")
        let ended = try await stream.untilEnd()
        #expect(ended.elements.isEmpty)
        #expect(ended.ending is KernelWatchError)
        let new = try await kernel.startWatching()
        #expect(new !== old)
        #expect(new.epoch != old.epoch)
        #expect(new.objects == old.objects)
        let resumed = try await #require(kernel.watch(from: old.position)).first(old.objects.count + 1)
        #expect(resumed.last == .snapshotEnd(new.position, bootID: nil))
        #expect(fleet.watchModel(node: "b", reqid: FleetValues.reqid) == nil, "b, not watched, stays so")
    }

    @Test("a fleet whose kernels are not watched keeps no model")
    func unwatchedFleetKeepsNoModel() async throws {
        let fleet = Self.fleet()
        let batch = try await fleet.kernel(for: "a", reqid: FleetValues.reqid).applyReportingPosition(
            Self.outboundBatch, deadline: .now + .seconds(5))
        #expect(batch.position == nil)
        #expect(fleet.watchModel(node: "a", reqid: FleetValues.reqid) == nil)
    }
}
