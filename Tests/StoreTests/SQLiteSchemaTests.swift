import Foundation
import MeshwardCore
import Testing

@testable import Store

/// What the SQLite conformer's schema itself guarantees, below the roles: rows the roles never
/// change are refused by triggers, and removed channels leave no sealed key behind.
@Suite("SQLite schema")
struct SQLiteSchemaTests {
    @Test("the issued-SPI table refuses deletes", arguments: StoreKind.allCases)
    func issuedTableIsPermanent(kind: StoreKind) async throws {
        let test = try TestStore(kind)
        _ = try await test.store.issue(channel("a", "b"))
        #expect(throws: (any Error).self) {
            try test.store.write("tamper") { db in try db.execute(sql: "DELETE FROM issued_spis") }
        }
    }

    @Test("removing a channel deletes its sealed key rows", arguments: StoreKind.allCases)
    func removalDeletesKeys(kind: StoreKind) async throws {
        let test = try TestStore(kind)
        _ = try await test.store.issue(channel("a", "b"))
        _ = try await test.store.issue(channel("b", "a"), destination: "198.18.1.1")
        try test.store.removeChannel(channel("a", "b"))
        let keyRows = try test.store.read("count") { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM generations")
        }
        #expect(keyRows == 1)
    }

    @Test(
        "a step the reconciler never writes is refused as damage, not passed on as text", arguments: StoreKind.allCases)
    func unknownStepIsCorrupt(kind: StoreKind) async throws {
        let test = try TestStore(kind)
        _ = try await test.store.issue(channel("a", "b"))
        try test.store.write("tamper") { db in try db.execute(sql: "UPDATE channels SET step = 'steady'") }
        let error = #expect(throws: StoreError.self) { try test.store.loadChannels() }
        #expect(error?.description.contains("channel step 'steady' is unknown") == true)
    }

    @Test(
        "the journal's result column holds the text earlier releases wrote, and such text reads back typed",
        arguments: StoreKind.allCases)
    func journalResultText(kind: StoreKind) async throws {
        let test = try TestStore(kind)
        var entry = try test.store.appendJournal([
            JournalEntry(node: "a", operation: "add-sa", target: "SA", plannedAt: t0, result: .planned)
        ])[0]
        func column() throws -> String? {
            try test.store.read("read the result") { db in try String.fetchOne(db, sql: "SELECT result FROM journal") }
        }
        #expect(try column() == "planned")
        entry.result = .failed(error: "EEXIST (17) (File exists)")
        try test.store.completeJournal([entry])
        #expect(try column() == "failed: EEXIST (17) (File exists)")

        try test.store.write("write an earlier release's text") { db in
            try db.execute(sql: "UPDATE journal SET result = 'not attempted: node a is unreachable'")
        }
        #expect(
            try test.store.journal(limit: nil, node: nil).map(\.result) == [
                .notAttempted(reason: "node a is unreachable")
            ])
    }
}
