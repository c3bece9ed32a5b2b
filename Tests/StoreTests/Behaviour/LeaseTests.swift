import Foundation
import MeshwardCore
import Testing

@testable import Store

/// The `LeaseStore` role and the fence it puts on every other role's writes, run against every
/// conformer. "Another controller" is another connection to the same database.
@Suite("Store roles: writer lease")
struct LeaseTests {
    @Test(
        "a live lease keeps others out; its holder renews; expiry lets another take over", arguments: StoreConformer.all
    )
    func leaseRules(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let store = test.store
        #expect(try await store.currentLease() == nil)

        try await store.acquireLease(holder: "ctl-a", ttl: .seconds(30), now: t0)
        #expect(
            try await store.currentLease()
                == Lease(holder: "ctl-a", acquiredAt: t0, expiresAt: t0.addingTimeInterval(30), epoch: 1))

        let other = try test.connect()
        let error = await #expect(throws: StoreError.self) {
            try await other.acquireLease(holder: "ctl-b", ttl: .seconds(30), now: t0.addingTimeInterval(10))
        }
        guard case .leaseHeld(let holder, let expires) = error else {
            Issue.record("expected leaseHeld, got \(String(describing: error))")
            return
        }
        #expect(holder == "ctl-a")
        #expect(expires == t0.addingTimeInterval(30))
        #expect(error?.description.contains("leased to 'ctl-a'") == true)

        // Re-acquiring by the holder renews and keeps the acquisition time.
        try await store.acquireLease(holder: "ctl-a", ttl: .seconds(30), now: t0.addingTimeInterval(20))
        try await store.renewLease(holder: "ctl-a", ttl: .milliseconds(1500), now: t0.addingTimeInterval(40))
        #expect(try await other.currentLease()?.acquiredAt == t0)
        #expect(try await other.currentLease()?.expiresAt == t0.addingTimeInterval(41.5))

        // Expired: another holder takes over, and the old one can no longer renew.
        try await other.acquireLease(holder: "ctl-b", ttl: .seconds(30), now: t0.addingTimeInterval(42))
        #expect(try await store.currentLease()?.holder == "ctl-b")
        #expect(try await store.currentLease()?.acquiredAt == t0.addingTimeInterval(42))
        await #expect(throws: StoreError.self) {
            try await store.renewLease(holder: "ctl-a", ttl: .seconds(30), now: t0.addingTimeInterval(43))
        }

        // Releasing by a non-holder does nothing; by the holder frees it at once.
        try await store.releaseLease(holder: "ctl-a")
        #expect(try await store.currentLease()?.holder == "ctl-b")
        try await other.releaseLease(holder: "ctl-b")
        #expect(try await store.currentLease() == nil)
        #expect(
            try await test.connect().acquireLease(holder: "ctl-c", ttl: .seconds(30), now: t0.addingTimeInterval(44))
                .holder == "ctl-c")
    }

    @Test(
        "the epoch rises with every change of holder, never with a renewal, and survives a release",
        arguments: StoreConformer.all)
    func epochs(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let store = test.store
        #expect(try await store.acquireLease(holder: "ctl-a", ttl: .seconds(30), now: t0).epoch == 1)
        #expect(
            try await store.renewLease(holder: "ctl-a", ttl: .seconds(30), now: t0.addingTimeInterval(10)).epoch == 1)
        #expect(
            try await store.acquireLease(holder: "ctl-a", ttl: .seconds(30), now: t0.addingTimeInterval(20)).epoch == 1)
        // Expired and taken by another holder: the next epoch.
        let other = try test.connect()
        #expect(
            try await other.acquireLease(holder: "ctl-b", ttl: .seconds(30), now: t0.addingTimeInterval(60)).epoch == 2)
        // Released, then taken again, even by the same holder: the epoch keeps rising.
        try await other.releaseLease(holder: "ctl-b")
        #expect(
            try await other.acquireLease(holder: "ctl-b", ttl: .seconds(30), now: t0.addingTimeInterval(61)).epoch == 3)
        // Taken over while live from a holder known to be gone: the next epoch again.
        #expect(
            try await store.takeOverLease(
                from: "ctl-b", holder: "ctl-c", ttl: .seconds(30), now: t0.addingTimeInterval(62)
            ).epoch == 4)
        #expect(try await other.currentLease()?.epoch == 4)
        // A takeover from anyone but the live holder is refused.
        await #expect(throws: StoreError.self) {
            try await other.takeOverLease(
                from: "ctl-x", holder: "ctl-d", ttl: .seconds(30), now: t0.addingTimeInterval(63))
        }
        #expect(try await other.currentLease()?.holder == "ctl-c")
    }

    @Test(
        "a holder whose lease moved to a later epoch under its own name can neither write nor renew",
        arguments: StoreConformer.all)
    func fencedByEpoch(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let a = channel("a", "b")
        try await test.store.acquireLease(holder: "ctl", ttl: .seconds(5), now: t0)
        _ = try await test.store.issue(a)
        // Another process with the same holder name took the lease after a release: a new epoch.
        let other = try test.connect()
        try await other.releaseLease(holder: "ctl")
        try await other.acquireLease(holder: "ctl", ttl: .seconds(5), now: t0.addingTimeInterval(1))
        await #expect(throws: StoreError.self) { try await test.store.issue(a) }
        await #expect(throws: StoreError.self) {
            try await test.store.renewLease(holder: "ctl", ttl: .seconds(5), now: t0.addingTimeInterval(2))
        }
        #expect(try await test.store.loadChannels()[a]?.generations.count == 1)
    }

    @Test(
        "two connections on one database: exactly one writes, the other learns who holds the lease",
        arguments: StoreConformer.all)
    func twoConnections(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let first = test.store
        let second = try test.connect()
        let now = Date()

        try await first.acquireLease(holder: "host-a:100", ttl: .seconds(60), now: now)
        let error = await #expect(throws: StoreError.self) {
            try await second.acquireLease(holder: "host-b:200", ttl: .seconds(60), now: now)
        }
        #expect(error?.description.contains("host-a:100") == true)
        _ = try await first.issue(channel("a", "b"))
        #expect(try await second.loadChannels().count == 1)
    }

    /// Every write of every role, as a deposed controller would attempt it.
    static func writes(
        of store: any ControllerStore, record: ChannelRecord, entry: JournalEntry
    ) -> [(role: String, write: () async throws -> Void)] {
        [
            ("issueGenerations", { _ = try await store.issue(channel("x", "y"), destination: "198.18.1.9") }),
            ("update", { try await store.update([record]) }),
            ("removeChannels", { try await store.removeChannels([record.id]) }),
            (
                "recordUnaccountedSAs",
                {
                    try await store.recordUnaccountedSAs(
                        freed: [UnaccountedSA(destination: address("198.18.1.2"), spi: SPI(0x4242), freedAt: t0)],
                        forgotten: [])
                }
            ),
            ("appendJournal", { try await store.appendJournal([entry]) }),
            ("completeJournal", { try await store.completeJournal([entry]) }),
            ("pruneJournal", { try await store.pruneJournal(plannedBefore: t0.addingTimeInterval(100)) }),
            (
                "recordRevision",
                { _ = try await store.recordRevision(hash: "h", source: "s", summary: "", at: t0, command: nil) }
            ),
            ("setMetadata", { try await store.setMetadata("k", "deposed") }),
        ]
    }

    @Test(
        "a controller whose lease was taken over is refused every write of every role; the new holder writes",
        arguments: StoreConformer.all)
    func deposedHolderIsFenced(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let old = test.store
        let a = channel("a", "b")
        try await old.acquireLease(holder: "old", ttl: .seconds(5), now: t0)
        _ = try await old.issue(a)
        let entry = try #require(
            try await old.appendJournal([
                JournalEntry(node: "b", operation: "add-sa", target: "SA", plannedAt: t0, result: .planned)
            ]).first)
        var record = try #require(try await old.loadChannels()[a])
        record.step = .creating

        // Another controller takes the expired lease over.
        let new = try test.connect()
        let taken = try await new.acquireLease(holder: "new", ttl: .seconds(60), now: t0.addingTimeInterval(6))
        #expect(taken.epoch == 2)

        for (role, write) in Self.writes(of: old, record: record, entry: entry) {
            let error = await #expect(throws: StoreError.self, "\(role)") { try await write() }
            guard case .leaseNotHeld(let holder, let current) = error else {
                Issue.record("\(role): expected leaseNotHeld, got \(String(describing: error))")
                continue
            }
            #expect(holder == "old", "\(role)")
            #expect(current?.holder == "new" && current?.epoch == 2, "\(role)")
        }
        // Nothing the deposed controller tried is in the Store.
        #expect(try await new.loadChannels().keys.sorted() == [a])
        #expect(try await new.loadChannels()[a]?.step == ChannelRecord.initialStep)
        #expect(try await new.journal(limit: nil, node: nil) == [entry])
        #expect(try await new.metadata("k") == nil)
        #expect(try await new.revisions(limit: nil).isEmpty)
        #expect(try await new.unaccountedSAs().isEmpty)

        // The new holder's writes go through.
        for (role, write) in Self.writes(of: new, record: record, entry: entry) {
            await #expect(throws: Never.self, "\(role)") { try await write() }
        }
        #expect(try await new.metadata("k") == "deposed")
    }
}
