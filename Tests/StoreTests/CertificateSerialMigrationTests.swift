import Foundation
import MeshwardCore
import PostgresNIO
import StorePostgres
import Testing

@testable import Store

/// A Store that recorded certificate serials as swift-certificates prints them (each byte
/// without its leading zero, `c:ff:1`), migrated: its serials read in the two-digit form, and
/// revoking a node still finds (and does not repeat) the revocations recorded before.
@Suite("Store: serials recorded before the two-digit form")
struct CertificateSerialMigrationTests {
    /// Rows as a Store before the migration held them: `c:ff:1` and `0:8a:10` issued to web-1,
    /// `5a:3c` (no byte below 0x10) to web-2, `e:5` to db-1 and revoked.
    static func olderRows(issuedAt base: Double) -> [String] {
        [
            """
            INSERT INTO issued_certificates (serial, node, issued_at, not_valid_after) VALUES
                ('c:ff:1', 'web-1', \(base + 10), \(base + 1000)), ('0:8a:10', 'web-1', \(base + 20), \(base + 1000)),
                ('5a:3c', 'web-2', \(base + 30), \(base + 1000)), ('e:5', 'db-1', \(base + 5), \(base + 1000))
            """,
            """
            INSERT INTO revoked_certificates (serial, node, revoked_at, reason)
            VALUES ('e:5', 'db-1', \(base + 40), 'host retired')
            """,
        ]
    }

    /// What the migrated Store answers, and what revoking web-1 and db-1 then does.
    static func expectMigrated(_ store: any ControllerStore) async throws {
        let issued = try await store.issuedCertificates(node: nil)
        #expect(issued.map(\.serial) == ["0e:05", "0c:ff:01", "00:8a:10", "5a:3c"])
        #expect(issued.map(\.node) == ["db-1", "web-1", "web-1", "web-2"])
        #expect(try await store.revokedCertificates().map(\.serial) == ["0e:05"])
        #expect(try await store.revokedNodes() == ["db-1"])

        let now = t0.addingTimeInterval(100)
        let webRevoked = try await store.revokeCertificates(ofNode: "web-1", reason: "re-imaged", now: now)
        #expect(Set(webRevoked.map(\.serial)) == ["0c:ff:01", "00:8a:10"])
        // db-1's revocation from before the migration is found: nothing is revoked twice.
        #expect(try await store.revokeCertificates(ofNode: "db-1", reason: "again", now: now) == [])
        #expect(Set(try await store.revokedCertificates().map(\.serial)) == ["0e:05", "0c:ff:01", "00:8a:10"])
        #expect(Set(try await store.revokedNodes()) == ["db-1", "web-1"])
    }

    @Test(
        "SQLite: migration 10 rewrites serials recorded without each byte's leading zero, and revocations recorded before still match"
    )
    func sqlite() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = directory + "/state"
        let before = try StateStore.open(directory: state, masterKeyPath: nil, logger: testLogger)
        try before.write("make the Store as it was before the two-digit serials") { db in
            try db.execute(
                sql: "DELETE FROM grdb_migrations WHERE identifier = '10-two-digit-certificate-serials'")
            for statement in Self.olderRows(issuedAt: t0.timeIntervalSinceReferenceDate) {
                try db.execute(sql: statement)
            }
        }
        let older = try before.read("read the older rows") { db in
            try String.fetchAll(db, sql: "SELECT serial FROM issued_certificates ORDER BY issued_at")
        }
        #expect(older == ["e:5", "c:ff:1", "0:8a:10", "5a:3c"])

        try await Self.expectMigrated(try StateStore.open(directory: state, masterKeyPath: nil, logger: testLogger))
    }

    @Test(
        "PostgreSQL: migration 8 rewrites serials recorded without each byte's leading zero, and revocations recorded before still match",
        .enabled(if: PostgresTestServer.url != nil, PostgresTestServer.skipReason))
    func postgres() async throws {
        let schema = PostgresTestServer.freshSchema()
        defer { PostgresTestServer.drop(schema: schema) }
        let sealer = try AESGCMKeySealer(masterKey: try KeyMaterial.random(count: 32))
        try await PostgresStoreTests.store(schema: schema, sealer: sealer).prepare()
        try await PostgresTestServer.withConnection(schema: schema) { connection in
            try await connection.query(
                "DELETE FROM schema_migrations WHERE name = '8-two-digit-certificate-serials'", logger: testLogger)
            for statement in Self.olderRows(issuedAt: t0.timeIntervalSinceReferenceDate) {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: testLogger)
            }
        }
        let migrated = try PostgresStoreTests.store(schema: schema, sealer: sealer)
        try await migrated.prepare()
        try await Self.expectMigrated(migrated)
    }
}
