import Foundation
import MeshwardCore
import Testing

@testable import Store

/// The `RevisionStore`, `JournalStore` and `MetadataStore` roles, run against every conformer.
@Suite("Store roles: revisions, journal and metadata")
struct JournalRevisionMetadataTests {
    @Test("revisions come back newest first", arguments: StoreConformer.all)
    func revisions(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let first = try await test.store.recordRevision(
            hash: "sha256:aa", source: "specs/", summary: "3 nodes", at: t0, command: nil)
        let second = try await test.store.recordRevision(
            hash: "sha256:bb", source: "specs/", summary: "+web-4", at: t0.addingTimeInterval(60), command: nil)

        #expect(second.id > first.id)
        #expect(try await test.store.revisions(limit: nil) == [second, first])
        #expect(try await test.store.revisions(limit: 1) == [second])
    }

    @Test(
        "each revision keeps the command that made it; one recorded without it has none", arguments: StoreConformer.all)
    func revisionCommand(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let old = try await test.store.recordRevision(hash: "h1", source: "s", summary: "", at: t0, command: nil)
        let rekey = try await test.store.recordRevision(
            hash: "h1", source: "s", summary: "", at: t0.addingTimeInterval(1), command: "rekey --node web-1")
        #expect(try await test.store.revisions(limit: nil).map(\.command) == ["rekey --node web-1", nil])
        #expect(rekey.command == "rekey --node web-1")
        #expect(old.command == nil)
    }

    @Test(
        "journal entries come back newest first, per node; completing one writes only its outcome",
        arguments: StoreConformer.all)
    func journal(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let revision = try await test.store.recordRevision(hash: "h", source: "s", summary: "", at: t0, command: nil)
        let entries = [
            JournalEntry(
                node: "web-1", operation: "add-sa", target: "SA 198.18.1.2 spi 0x00001234",
                channel: channel("web-1", "app-1"),
                plannedAt: t0, appliedAt: t0.addingTimeInterval(0.5), result: .applied, revision: revision.id),
            JournalEntry(
                node: "app-1", operation: "update-policy", target: "policy in web-1->app-1", plannedAt: t0,
                result: .failed(error: "EEXIST (17) (File exists)")),
            JournalEntry(
                node: "web-1", operation: "delete-sa", target: "SA 198.18.1.2 spi 0x00000999", plannedAt: t0,
                result: .planned),
        ]
        let stored = try await test.store.appendJournal(entries)
        #expect(stored.allSatisfy { $0.id != nil })
        #expect(
            stored.map {
                var entry = $0; entry.id = nil; return entry
            } == entries)

        let all = try await test.store.journal(limit: nil, node: nil)
        #expect(all == stored.reversed())
        #expect(try await test.store.journal(limit: nil, node: "web-1") == [stored[2], stored[0]])
        #expect(try await test.store.journal(limit: 1, node: nil) == [stored[2]])

        // Completing writes each entry's outcome by id; the others keep theirs.
        var completed = stored[1]
        completed.appliedAt = t0.addingTimeInterval(2)
        completed.result = .applied
        try await test.store.completeJournal([completed])
        #expect(try await test.connect().journal(limit: nil, node: "app-1") == [completed])
        #expect(try await test.store.journal(limit: nil, node: "web-1") == [stored[2], stored[0]])

        #expect(try await test.store.pruneJournal(plannedBefore: t0.addingTimeInterval(1)) == 3)
        #expect(try await test.store.journal(limit: nil, node: nil).isEmpty)
    }

    @Test(
        "every kind of journal result reads back as it was written, an unrecognized text too",
        arguments: StoreConformer.all)
    func journalResults(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let results: [JournalResult] = [
            .planned, .applied, .failed(error: "EEXIST (17) (File exists)"), .notAttempted(reason: "node unreachable"),
            .indeterminate(reason: "the connection broke after sending"), .unrecognized("ok"),
        ]
        let planned = results.map { _ in
            JournalEntry(node: "web-1", operation: "add-sa", target: "SA", plannedAt: t0, result: .planned)
        }
        let stored = try await test.store.appendJournal(planned)
        try await test.store.completeJournal(
            zip(stored, results).map { entry, result in
                var entry = entry
                entry.result = result
                return entry
            })
        #expect(try await test.connect().journal(limit: nil, node: nil).map(\.result) == results.reversed())
    }

    @Test("metadata is set, replaced and deleted", arguments: StoreConformer.all)
    func metadata(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        #expect(try await test.store.metadata("last-pass") == nil)
        try await test.store.setMetadata("last-pass", "2025-01-01T00:00:00Z")
        try await test.store.setMetadata("last-pass", "2025-01-02T00:00:00Z")
        #expect(try await test.store.metadata("last-pass") == "2025-01-02T00:00:00Z")
        try await test.store.setMetadata("last-pass", nil)
        #expect(try await test.store.metadata("last-pass") == nil)
    }
}
