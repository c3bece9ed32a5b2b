import Foundation
import MeshwardCore
import Store
import StorePostgres
import Testing

@testable import Store

/// One way of making a Store. Every behavioural test runs once per conformer, through the
/// role protocols only, so a new conformer (PostgreSQL) joins `all` and runs the suite as it is.
struct StoreConformer: Sendable, CustomTestStringConvertible {
    let testDescription: String
    /// Makes an empty database that issues SPIs from `spiRange` only (narrowed to reach
    /// exhaustion; `defaultSPIRange` otherwise).
    let makeDatabase: @Sendable (_ spiRange: ClosedRange<UInt32>) throws -> StoreDatabase

    /// Every conformer the suite runs against: PostgreSQL too when `MESHWARD_TEST_POSTGRES`
    /// names a server (`PostgresConformerTests` says when it is skipped).
    static let all: [StoreConformer] = [.sqliteFile, .sqliteMemory] + (postgres.map { [$0] } ?? [])

    static let defaultSPIRange = StateStore.defaultSPIRange

    /// SQLite in a state directory (GRDB's `DatabasePool`, WAL): each connection is a separate
    /// `StateStore.open`, as separate controller processes hold.
    static let sqliteFile = StoreConformer(testDescription: "SQLite file") { spiRange in
        let directory = try makeTemporaryDirectory()
        return try StoreDatabase(cleanup: { try? FileManager.default.removeItem(atPath: directory) }) {
            try StateStore.open(
                directory: directory + "/state", masterKeyPath: nil, logger: testLogger, spiRange: spiRange)
        }
    }

    /// SQLite in memory (GRDB's `DatabaseQueue`): connections share the one database.
    static let sqliteMemory = StoreConformer(testDescription: "SQLite in memory") { spiRange in
        let first = try StateStore.inMemory(
            masterKey: try KeyMaterial.random(count: 32), logger: testLogger, spiRange: spiRange)
        return try StoreDatabase(cleanup: {}) { first.sharingDatabase() }
    }

    /// PostgreSQL at `MESHWARD_TEST_POSTGRES`, each database a fresh schema of its own; the
    /// lease runs on the suite's times (`LeaseClock.caller`) so that its rules are checked at
    /// fixed instants. Every connection is a separate `PostgresStore`, as separate controller
    /// processes hold; the schema is dropped with the database.
    static let postgres: StoreConformer? = PostgresTestServer.url.map { url in
        StoreConformer(testDescription: "PostgreSQL") { spiRange in
            let schema = PostgresTestServer.freshSchema()
            let sealer = try AESGCMKeySealer(masterKey: try KeyMaterial.random(count: 32))
            return try StoreDatabase(cleanup: { PostgresTestServer.drop(schema: schema) }) {
                try PostgresStore(
                    url: url, environment: ProcessInfo.processInfo.environment, schema: schema,
                    preparation: .migrate, leaseClock: .caller, sealer: sealer, masterKeyPath: nil,
                    logger: testLogger, spiRange: spiRange)
            }
        }
    }

    /// A fresh, empty database and a first connection to it.
    func make(spiRange: ClosedRange<UInt32> = Self.defaultSPIRange) throws -> StoreDatabase {
        try makeDatabase(spiRange)
    }
}

/// One empty database made by a conformer, with a first connection (`store`). `connect()`
/// gives another controller's connection to it: the same data, its own lease fence. The
/// database goes away with this value.
final class StoreDatabase: Sendable {
    /// The first connection: what the test's controller holds.
    let store: any ControllerStore
    private let connection: @Sendable () throws -> any ControllerStore
    private let cleanup: @Sendable () -> Void

    init(
        cleanup: @escaping @Sendable () -> Void, connection: @escaping @Sendable () throws -> any ControllerStore
    )
        throws
    {
        self.connection = connection
        self.cleanup = cleanup
        do {
            store = try connection()
        } catch {
            cleanup()
            throw error
        }
    }

    /// Another connection to the same database, as a second controller process holds.
    func connect() throws -> any ControllerStore { try connection() }

    deinit { cleanup() }
}

extension GenerationStore {
    /// Issues one generation of `id` between 198.18.x addresses, for brevity.
    func issue(
        _ id: ChannelID, cipher: Cipher = .aesGCM256, destination: String = "198.18.1.2", avoiding: Set<SPI> = [],
        now: Date = t0
    ) async throws -> Generation {
        let request = GenerationRequest(
            channel: id, cipher: cipher, source: address("198.18.1.1"), destination: address(destination),
            avoiding: avoiding)
        return try await issueGenerations([request], now: now)[0]
    }
}
