import Foundation
import MeshwardCore
import Testing

@testable import Store

@Suite("Writer lease")
struct LeaseTests {
    @Test(
        "a live lease keeps others out; its holder renews; expiry lets another take over", arguments: StoreKind.allCases
    )
    func leaseRules(kind: StoreKind) throws {
        let test = try TestStore(kind)
        let store = test.store
        #expect(try store.currentLease() == nil)

        try store.acquireLease(holder: "ctl-a", ttl: .seconds(30), now: t0)
        #expect(
            try store.currentLease()
                == Lease(holder: "ctl-a", acquiredAt: t0, expiresAt: t0.addingTimeInterval(30), epoch: 1))

        let error = #expect(throws: StoreError.self) {
            try store.acquireLease(holder: "ctl-b", ttl: .seconds(30), now: t0.addingTimeInterval(10))
        }
        guard case .leaseHeld(let holder, let expires) = error else {
            Issue.record("expected leaseHeld, got \(String(describing: error))")
            return
        }
        #expect(holder == "ctl-a")
        #expect(expires == t0.addingTimeInterval(30))
        #expect(error?.description.contains("leased to 'ctl-a'") == true)

        // Re-acquiring by the holder renews and keeps the acquisition time.
        try store.acquireLease(holder: "ctl-a", ttl: .seconds(30), now: t0.addingTimeInterval(20))
        try store.renewLease(holder: "ctl-a", ttl: .milliseconds(1500), now: t0.addingTimeInterval(40))
        #expect(try store.currentLease()?.acquiredAt == t0)
        #expect(try store.currentLease()?.expiresAt == t0.addingTimeInterval(41.5))

        // Expired: another holder takes over, and the old one can no longer renew.
        try store.acquireLease(holder: "ctl-b", ttl: .seconds(30), now: t0.addingTimeInterval(42))
        #expect(try store.currentLease()?.holder == "ctl-b")
        #expect(try store.currentLease()?.acquiredAt == t0.addingTimeInterval(42))
        #expect(throws: StoreError.self) {
            try store.renewLease(holder: "ctl-a", ttl: .seconds(30), now: t0.addingTimeInterval(43))
        }

        // Releasing by a non-holder does nothing; by the holder frees it at once.
        try store.releaseLease(holder: "ctl-a")
        #expect(try store.currentLease()?.holder == "ctl-b")
        try store.releaseLease(holder: "ctl-b")
        #expect(try store.currentLease() == nil)
        try store.acquireLease(holder: "ctl-c", ttl: .seconds(30), now: t0.addingTimeInterval(44))
    }

    @Test(
        "the epoch rises with every change of holder, never with a renewal, and survives a release",
        arguments: StoreKind.allCases)
    func epochs(kind: StoreKind) throws {
        let store = try TestStore(kind).store
        #expect(try store.acquireLease(holder: "ctl-a", ttl: .seconds(30), now: t0).epoch == 1)
        #expect(try store.renewLease(holder: "ctl-a", ttl: .seconds(30), now: t0.addingTimeInterval(10)).epoch == 1)
        #expect(try store.acquireLease(holder: "ctl-a", ttl: .seconds(30), now: t0.addingTimeInterval(20)).epoch == 1)
        // Expired and taken by another holder: the next epoch.
        #expect(try store.acquireLease(holder: "ctl-b", ttl: .seconds(30), now: t0.addingTimeInterval(60)).epoch == 2)
        // Released, then taken again, even by the same holder: the epoch keeps rising.
        try store.releaseLease(holder: "ctl-b")
        #expect(try store.acquireLease(holder: "ctl-b", ttl: .seconds(30), now: t0.addingTimeInterval(61)).epoch == 3)
        #expect(
            try store.takeOverLease(from: "ctl-b", holder: "ctl-c", ttl: .seconds(30), now: t0.addingTimeInterval(62))
                .epoch == 4)
        #expect(try store.currentLease()?.epoch == 4)
    }

    @Test("a holder whose lease moved to a later epoch under its own name can neither write nor renew")
    func fencedByEpoch() throws {
        let test = try TestStore(.onDisk)
        let a = channel("a", "b")
        try test.store.acquireLease(holder: "ctl", ttl: .seconds(5), now: t0)
        _ = try test.store.issue(a)
        // Another process with the same holder name took the lease after a release: a new epoch.
        let other = try StateStore.open(directory: test.stateDirectory, logger: testLogger)
        try other.releaseLease(holder: "ctl")
        try other.acquireLease(holder: "ctl", ttl: .seconds(5), now: t0.addingTimeInterval(1))
        #expect(throws: StoreError.self) { try test.store.issue(a) }
        #expect(throws: StoreError.self) {
            try test.store.renewLease(holder: "ctl", ttl: .seconds(5), now: t0.addingTimeInterval(2))
        }
        #expect(try test.store.loadChannels()[a]?.generations.count == 1)
    }

    @Test("two stores on one database: exactly one writes, the other learns who holds the lease")
    func twoInstancesOneFile() throws {
        let test = try TestStore(.onDisk)
        let first = test.store
        let second = try StateStore.open(directory: test.stateDirectory, logger: testLogger)
        let now = Date()

        try first.acquireLease(holder: "host-a:100", ttl: .seconds(60), now: now)
        let error = #expect(throws: StoreError.self) {
            try second.acquireLease(holder: "host-b:200", ttl: .seconds(60), now: now)
        }
        #expect(error?.description.contains("host-a:100") == true)
        _ = try first.issue(channel("a", "b"))
        #expect(try second.loadChannels().count == 1)
    }

    @Test("a controller whose lease was taken over cannot write", arguments: StoreKind.allCases)
    func fencedAfterTakeover(kind: StoreKind) throws {
        let test = try TestStore(kind)
        let a = channel("a", "b")
        try test.store.acquireLease(holder: "old", ttl: .seconds(5), now: t0)
        _ = try test.store.issue(a)

        // Another controller takes the expired lease over (same database, written directly).
        try test.store.writeUnfenced("take over") { db in
            try db.execute(sql: "UPDATE lease SET holder = 'new', expires_at = expires_at + 100")
        }
        let error = #expect(throws: StoreError.self) { try test.store.issue(a) }
        guard case .leaseNotHeld(let holder, let current) = error else {
            Issue.record("expected leaseNotHeld, got \(String(describing: error))")
            return
        }
        #expect(holder == "old")
        #expect(current?.holder == "new")
        #expect(try test.store.loadChannels()[a]?.generations.count == 1)
    }

    @Test("two processes contend for the lease: exactly one writes")
    func twoProcesses() throws {
        let writer = try #require(builtProduct("store-crash-writer"), "build store-crash-writer (swift build)")
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = directory + "/state"

        let children = try ["proc-a", "proc-b"].map { holder in
            try ChildProcess(writer, ["lease", state, holder, "3000"])
        }
        let outputs = children.map { $0.waitForExit() }
        let wrote = outputs.filter { $0.output.contains("wrote") }
        let refused = outputs.filter { $0.output.contains("refused:") }
        #expect(wrote.count == 1, "outputs: \(outputs.map(\.output))")
        #expect(refused.count == 1, "outputs: \(outputs.map(\.output))")
        if let winner = wrote.first, let loser = refused.first {
            let winnerName = winner.arguments[2]
            #expect(loser.output.contains("leased to '\(winnerName)'"))
            #expect(loser.status == 3)
            #expect(winner.status == 0)
            let store = try StateStore.open(directory: state, logger: testLogger)
            #expect(try store.loadChannels().keys.map(\.from) == [winnerName])
            #expect(try store.currentLease() == nil)
        }
    }
}
