import Foundation
import MeshwardCore
import Testing

@testable import Store

@Suite("Revisions, journal and metadata")
struct HistoryTests {
    @Test("revisions come back newest first", arguments: StoreKind.allCases)
    func revisions(kind: StoreKind) throws {
        let test = try TestStore(kind)
        let first = try test.store.recordRevision(hash: "sha256:aa", source: "specs/", summary: "3 nodes", at: t0)
        let second = try test.store.recordRevision(
            hash: "sha256:bb", source: "specs/", summary: "+web-4", at: t0.addingTimeInterval(60))

        #expect(second.id > first.id)
        #expect(try test.store.revisions(limit: nil) == [second, first])
        #expect(try test.store.revisions(limit: 1) == [second])
    }

    @Test(
        "each revision keeps the command that made it; one recorded without it has none", arguments: StoreKind.allCases)
    func revisionCommand(kind: StoreKind) throws {
        let test = try TestStore(kind)
        let old = try test.store.recordRevision(hash: "h1", source: "s", summary: "", at: t0)
        let rekey = try test.store.recordRevision(
            hash: "h1", source: "s", summary: "", at: t0.addingTimeInterval(1), command: "rekey --node web-1")
        #expect(try test.store.revisions(limit: nil).map(\.command) == ["rekey --node web-1", nil])
        #expect(rekey.command == "rekey --node web-1")
        #expect(old.command == nil)
    }

    @Test(
        "hasChannels is false for a new store and true once a channel has a generation", arguments: StoreKind.allCases)
    func hasChannels(kind: StoreKind) throws {
        let test = try TestStore(kind)
        #expect(try !test.store.hasChannels())
        _ = try test.store.issue(channel("web-1", "app-1"))
        #expect(try test.store.hasChannels())
    }

    @Test("journal entries come back newest first, per node", arguments: StoreKind.allCases)
    func journal(kind: StoreKind) throws {
        let test = try TestStore(kind)
        let revision = try test.store.recordRevision(hash: "h", source: "s", summary: "", at: t0)
        let entries = [
            JournalEntry(
                node: "web-1", operation: "add-sa", target: "SA 198.18.1.2 spi 0x00001234",
                channel: channel("web-1", "app-1"),
                plannedAt: t0, appliedAt: t0.addingTimeInterval(0.5), result: "ok", revision: revision.id),
            JournalEntry(
                node: "app-1", operation: "update-policy", target: "policy in web-1->app-1", plannedAt: t0,
                result: "EEXIST: File exists"),
            JournalEntry(
                node: "web-1", operation: "delete-sa", target: "SA 198.18.1.2 spi 0x00000999", plannedAt: t0,
                result: "ok"),
        ]
        let stored = try test.store.appendJournal(entries)
        #expect(stored.allSatisfy { $0.id != nil })

        let all = try test.store.journal(limit: nil, node: nil)
        #expect(all == stored.reversed())
        #expect(try test.store.journal(limit: nil, node: "web-1") == [stored[2], stored[0]])
        #expect(try test.store.journal(limit: 1, node: nil) == [stored[2]])

        #expect(try test.store.pruneJournal(plannedBefore: t0.addingTimeInterval(1)) == 3)
        #expect(try test.store.journal(limit: nil, node: nil).isEmpty)
    }

    @Test("metadata is set, replaced and deleted", arguments: StoreKind.allCases)
    func metadata(kind: StoreKind) throws {
        let test = try TestStore(kind)
        #expect(try test.store.metadata("last-pass") == nil)
        try test.store.setMetadata("last-pass", "2025-01-01T00:00:00Z")
        try test.store.setMetadata("last-pass", "2025-01-02T00:00:00Z")
        #expect(try test.store.metadata("last-pass") == "2025-01-02T00:00:00Z")
        try test.store.setMetadata("last-pass", nil)
        #expect(try test.store.metadata("last-pass") == nil)
    }
}
