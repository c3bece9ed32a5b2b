import Foundation
import MeshwardCore
import PostgresNIO
import Store
import StorePostgres
import Testing

@testable import Store

/// What only the PostgreSQL conformer does: the server's clock for the lease, reservations the
/// database itself refuses to delete, schema versions, the master key. The role rules run in the
/// behavioural suite (`StoreConformer.all`).
@Suite("Store on PostgreSQL", .enabled(if: PostgresTestServer.url != nil, PostgresTestServer.skipReason))
struct PostgresStoreTests {
    /// A store on a fresh schema of the test server, with its own connection.
    static func store(
        schema: String, preparation: PostgresStore.Preparation = .migrate,
        leaseClock: PostgresStore.LeaseClock = .database, sealer: (any KeySealer)? = nil
    ) throws -> PostgresStore {
        guard let url = PostgresTestServer.url else { throw PostgresTestServerError.notConfigured }
        return try PostgresStore(
            url: url, environment: ProcessInfo.processInfo.environment, schema: schema, preparation: preparation,
            leaseClock: leaseClock,
            sealer: try sealer ?? AESGCMKeySealer(masterKey: try KeyMaterial.random(count: 32)),
            masterKeyPath: "/test/master.key", logger: testLogger)
    }

    @Test("the lease's expiry is the server's now() plus the TTL, whatever time the controller passes")
    func leaseOnServerClock() async throws {
        let schema = PostgresTestServer.freshSchema()
        defer { PostgresTestServer.drop(schema: schema) }
        let store = try Self.store(schema: schema)
        let before = Date()
        // A controller whose clock is months behind (t0) still gets a lease that ends 30 s after
        // the server's now, and one whose clock is a day ahead cannot take it over.
        let lease = try await store.acquireLease(holder: "ctl-a", ttl: .seconds(30), now: t0)
        let after = Date()
        #expect(lease.expiresAt.timeIntervalSince(before) > 29)
        #expect(lease.expiresAt.timeIntervalSince(after) < 31)
        #expect(lease.epoch == 1)

        let other = try Self.store(schema: schema)
        await #expect(throws: StoreError.self) {
            try await other.acquireLease(holder: "ctl-b", ttl: .seconds(30), now: Date().addingTimeInterval(86_400))
        }
        let renewed = try await store.renewLease(holder: "ctl-a", ttl: .seconds(5), now: t0)
        #expect(renewed.expiresAt.timeIntervalSince(Date()) < 6)
        #expect(renewed.expiresAt.timeIntervalSince(before) > 4)
    }

    @Test("the database refuses to delete, change or truncate a reserved SPI, and to lower the lease epoch")
    func reservationsEnforcedByTheDatabase() async throws {
        let schema = PostgresTestServer.freshSchema()
        defer { PostgresTestServer.drop(schema: schema) }
        let store = try Self.store(schema: schema)
        let generation = try await store.issue(channel("web-1", "app-1"))
        try await store.acquireLease(holder: "ctl-a", ttl: .seconds(30), now: t0)
        let statements = [
            "DELETE FROM issued_spis",
            "UPDATE issued_spis SET spi = spi + 1",
            "TRUNCATE issued_spis",
            "UPDATE generations SET sealed_key = '\\x00'",
            "UPDATE lease SET epoch = 0",
            "DELETE FROM lease",
        ]
        for statement in statements {
            let refused = try await PostgresTestServer.withConnection(schema: schema) { connection in
                do {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: testLogger)
                    return false
                } catch let error as PSQLError {
                    return error.serverInfo?[.message] != nil
                }
            }
            #expect(refused, "\(statement) was not refused")
        }
        #expect(try await store.reservedSPIs(for: address("198.18.1.2")) == [generation.spi])
        #expect(try await store.currentLease()?.epoch == 1)
    }

    @Test("a schema without Meshward's tables, older or newer than this Meshward is refused, naming the migrations")
    func schemaVersionsRefused() async throws {
        let schema = PostgresTestServer.freshSchema()
        defer { PostgresTestServer.drop(schema: schema) }
        let sealer = try AESGCMKeySealer(masterKey: try KeyMaterial.random(count: 32))
        try await PostgresTestServer.withConnection(schema: nil) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"), logger: testLogger)
        }
        let empty = await #expect(throws: StoreError.self) {
            try await Self.store(schema: schema, preparation: .verify, sealer: sealer).prepare()
        }
        #expect(empty?.description.contains("holds no Meshward schema") == true)
        #expect(empty?.description.contains("meshward store migrate") == true)

        try await Self.store(schema: schema, sealer: sealer).prepare()
        try await Self.store(schema: schema, preparation: .verify, sealer: sealer).prepare()

        try await PostgresTestServer.withConnection(schema: schema) { connection in
            try await connection.query(
                "DELETE FROM schema_migrations WHERE name = '4-lease-metadata-sealing'", logger: testLogger)
        }
        let older = await #expect(throws: StoreError.self) {
            try await Self.store(schema: schema, preparation: .verify, sealer: sealer).prepare()
        }
        #expect(older?.description.contains("is older than this Meshward") == true)
        #expect(older?.description.contains("4-lease-metadata-sealing") == true)

        try await PostgresTestServer.withConnection(schema: schema) { connection in
            try await connection.query(
                """
                INSERT INTO schema_migrations (name) VALUES ('4-lease-metadata-sealing'), ('99-from-the-future')
                """, logger: testLogger)
        }
        let newer = await #expect(throws: StoreError.self) {
            try await Self.store(schema: schema, preparation: .verify, sealer: sealer).prepare()
        }
        #expect(newer?.description.contains("was migrated by a newer Meshward") == true)
        #expect(newer?.description.contains("99-from-the-future") == true)
    }

    @Test("the journal's result column holds the text earlier releases wrote, and such text reads back typed")
    func journalResultText() async throws {
        let schema = PostgresTestServer.freshSchema()
        defer { PostgresTestServer.drop(schema: schema) }
        let store = try Self.store(schema: schema)
        var entry = try await store.appendJournal([
            JournalEntry(node: "a", operation: "add-sa", target: "SA", plannedAt: t0, result: .planned)
        ])[0]
        func column() async throws -> [String] {
            try await PostgresTestServer.withConnection(schema: schema) { connection in
                var texts: [String] = []
                for try await text in try await connection.query("SELECT result FROM journal", logger: testLogger)
                    .decode(String.self)
                {
                    texts.append(text)
                }
                return texts
            }
        }
        #expect(try await column() == ["planned"])
        entry.result = .failed(error: "EEXIST (17) (File exists)")
        try await store.completeJournal([entry])
        #expect(try await column() == ["failed: EEXIST (17) (File exists)"])

        try await PostgresTestServer.withConnection(schema: schema) { connection in
            try await connection.query(
                "UPDATE journal SET result = 'not attempted: node a is unreachable'", logger: testLogger)
        }
        #expect(
            try await store.journal(limit: nil, node: nil).map(\.result) == [
                .notAttempted(reason: "node a is unreachable")
            ])
    }

    @Test("a master key other than the one the Store was created with is refused before any key is unsealed")
    func wrongMasterKeyRefused() async throws {
        let schema = PostgresTestServer.freshSchema()
        defer { PostgresTestServer.drop(schema: schema) }
        let store = try Self.store(schema: schema)
        _ = try await store.issue(channel("web-1", "app-1"))
        let other = try Self.store(
            schema: schema, preparation: .verify,
            sealer: try AESGCMKeySealer(masterKey: try KeyMaterial.random(count: 32)))
        let error = await #expect(throws: StoreError.self) { try await other.prepare() }
        #expect(error?.description.contains("master key /test/master.key does not open the keys") == true)
    }

    @Test("no table holds a channel's or a credential's key bytes: only sealed blobs, which the master key opens")
    func noKeyBytesInAnyTable() async throws {
        let schema = PostgresTestServer.freshSchema()
        defer { PostgresTestServer.drop(schema: schema) }
        let store = try Self.store(schema: schema)
        var keys: [[UInt8]] = []
        for index in 0..<20 {
            keys.append(try await store.issue(channel("n\(index)", "hub")).key.bytes)
        }
        keys += try await Self.storeCredentials(in: store)
        let dump = try await PostgresTestServer.withConnection(schema: schema) { connection in
            var text = ""
            for table in [
                "channels", "generations", "issued_spis", "master_key_check", "lease", "metadata", "credentials",
            ] {
                for try await row in try await connection.query(
                    PostgresQuery(unsafeSQL: "SELECT encode(convert_to(t::text, 'UTF8'), 'hex') FROM \(table) AS t"),
                    logger: testLogger
                ).decode(String.self) {
                    text += row
                }
            }
            return text
        }
        #expect(!dump.isEmpty)
        for key in keys {
            let hex = key.map { String(format: "%02x", $0) }.joined()
            #expect(!dump.contains(hex), "a key's bytes appear in a table")
        }
        #expect(try await store.loadChannels().count == 20)
    }

    @Test(
        "a pg_dump of the Store holds sealed keys only, never a channel's or a credential's key bytes",
        .enabled(if: PostgresTestServer.pgDump != nil, "no pg_dump binary found"))
    func pgDumpHoldsNoKey() async throws {
        let schema = PostgresTestServer.freshSchema()
        defer { PostgresTestServer.drop(schema: schema) }
        let store = try Self.store(schema: schema)
        var keys: [[UInt8]] = []
        for index in 0..<20 {
            keys.append(try await store.issue(channel("n\(index)", "hub")).key.bytes)
        }
        keys += try await Self.storeCredentials(in: store)
        let dump = try await PostgresTestServer.dump(schema: schema)
        // bytea columns are dumped as hex: the sealed keys are there, the keys are not.
        #expect(dump.contains("COPY \(schema).generations"))
        #expect(dump.contains("COPY \(schema).credentials"))
        #expect(dump.contains("\\x"))
        for key in keys {
            let hex = key.map { String(format: "%02x", $0) }.joined()
            #expect(!dump.lowercased().contains(hex), "a key's bytes appear in the dump")
        }
    }

    /// Stores two credentials (as the cluster CA and a controller's) and returns their private keys.
    static func storeCredentials(in store: PostgresStore) async throws -> [[UInt8]] {
        var keys: [[UInt8]] = []
        for name in ["cluster-ca", "controller:prod"] {
            let credential = StoredCredential(
                certificatePEM: "-----BEGIN CERTIFICATE-----\n\(name)\n-----END CERTIFICATE-----\n",
                privateKey: try KeyMaterial.random(count: 48))
            _ = try await store.storeCredentialIfAbsent(credential, named: name, now: Date())
            keys.append(credential.privateKey.bytes)
        }
        #expect(try await store.credential(named: "cluster-ca")?.privateKey.bytes == keys[0])
        return keys
    }
}
