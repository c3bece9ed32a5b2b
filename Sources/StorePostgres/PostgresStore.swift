import Foundation
import Logging
import MeshwardCore
import PostgresNIO
import Store
import Synchronization

/// The controller's durable state in PostgreSQL, for controllers on several machines that share
/// it (design §11). A `ControllerStore` like `StateStore`, with the same rules: every call is one
/// transaction; keys are sealed by its `KeySealer` (the master key stays in a file on the
/// controller's host and never enters the database); SPIs are reserved forever, which the
/// database itself enforces (triggers refuse to delete or change a reservation); and once this
/// instance holds the lease, every write transaction first locks the lease row and checks its
/// holder and epoch (`StoreError.leaseNotHeld` otherwise).
///
/// The lease's times come from the server's clock (`now()`), never from a controller's: the
/// `now:` the lease methods take is ignored (`LeaseClock.database`). Session advisory locks are
/// never used (a silently dropped connection would leave two leaders); the lease is a row.
///
/// Writes that cover many rows are multi-row statements (chunked below PostgreSQL's parameter
/// limit), so a pass pays a round trip per statement, not per channel. One connection per
/// instance, opened on first use and again after the server dropped it; calls take turns on it.
public final class PostgresStore: Sendable {
    /// Where the lease's times come from.
    package enum LeaseClock: Sendable {
        /// The server's `now()`: what controllers use.
        case database
        /// The `now:` the caller passes: for the behavioural suite, whose times are fixed.
        case caller
    }

    /// What happens to the schema when the instance first connects.
    package enum Preparation: Sendable {
        /// Refuse a schema older or newer than this Meshward's migrations.
        case verify
        /// Apply missing migrations (creating `schema` first when one is named).
        case migrate
    }

    /// The holder and epoch this instance acquired the lease under; writes are fenced by them.
    struct LeaseFence: Sendable, Hashable {
        var holder: String
        var epoch: Int64
    }

    /// The database, as messages name it (never with a password).
    public let url: PostgresStoreURL
    let configuration: PostgresConnection.Configuration
    let schema: String?
    let preparation: Preparation
    let leaseClock: LeaseClock
    let sealer: any KeySealer
    let masterKeyPath: String?
    let logger: Logger
    let spiRange: ClosedRange<UInt32>
    let gate = ConnectionGate()
    let fence = Mutex<LeaseFence?>(nil)
    private static let nextConnectionID = Atomic<Int>(1)

    package init(
        url: PostgresStoreURL, environment: [String: String], schema: String?, preparation: Preparation,
        leaseClock: LeaseClock, sealer: any KeySealer, masterKeyPath: String?, logger: Logger,
        spiRange: ClosedRange<UInt32> = StateStore.defaultSPIRange
    ) throws {
        self.url = url
        do {
            configuration = try url.connectionConfiguration(environment: environment, schema: schema)
        } catch {
            throw StoreError.database(path: url.description, operation: "set up TLS", message: "\(error)")
        }
        self.schema = schema
        self.preparation = preparation
        self.leaseClock = leaseClock
        self.sealer = sealer
        self.masterKeyPath = masterKeyPath
        self.logger = logger
        self.spiRange = spiRange
    }

    deinit {
        if let connection = gate.connection {
            // The connection stays referenced until it has closed (postgres-nio requires that).
            let closed: EventLoopFuture<Void> = connection.close()
            closed.whenComplete { _ in withExtendedLifetime(connection) {} }
        }
    }

    /// Opens the Store at `url` with the master key in `masterKeyPath` (required: it is never
    /// created here, so that every replica uses the one key the operator distributed).
    ///
    /// Connects, refuses a schema older or newer than this Meshward's (`schemaMissing`,
    /// `schemaBehind`, `schemaAhead`: `meshward store migrate` applies migrations), and checks
    /// the master key against the value sealed when the Store was created.
    public static func open(
        url: PostgresStoreURL, masterKeyPath: String,
        environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger
    ) async throws -> PostgresStore {
        let store = try PostgresStore(
            url: url, environment: environment, schema: nil, preparation: .verify, leaseClock: .database,
            sealer: try loadSealer(masterKeyPath), masterKeyPath: masterKeyPath, logger: logger)
        try await store.prepare()
        logger.info("opened state store", metadata: ["store.url": "\(url)"])
        return store
    }

    /// Applies the migrations `url`'s database lacks, all in one transaction, and returns their
    /// names (empty when it was current). Refuses a database a newer Meshward migrated.
    public static func migrate(
        url: PostgresStoreURL, masterKeyPath: String,
        environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger
    ) async throws -> [String] {
        let store = try PostgresStore(
            url: url, environment: environment, schema: nil, preparation: .verify, leaseClock: .database,
            sealer: try loadSealer(masterKeyPath), masterKeyPath: masterKeyPath, logger: logger)
        await store.gate.enter()
        defer { store.gate.leave() }
        let connection = try await store.connect()
        let applied = try await store.applyMigrations(connection)
        try await store.verifyMasterKey(connection)
        store.gate.prepared = true
        return applied
    }

    static func loadSealer(_ path: String) throws -> any KeySealer {
        let file = MasterKeyFile(path: path, isExternal: true)
        guard let key = try file.load() else { throw StoreError.masterKeyFileMissing(path: path) }
        do {
            return try AESGCMKeySealer(masterKey: key)
        } catch {
            throw StoreError.masterKeyInvalid(path: path, reason: error.description)
        }
    }

    /// Connects now (instead of on first use) and checks schema and master key.
    package func prepare() async throws {
        await gate.enter()
        defer { gate.leave() }
        _ = try await openConnection()
    }

    /// Drops this instance's own schema with everything in it (a benchmark's scratch schema);
    /// refuses without one, so the server's default schema is never dropped.
    package func dropSchema() async throws {
        guard let schema else {
            throw StoreError.database(path: url.description, operation: "drop the schema", message: "no schema named")
        }
        try await transaction("drop schema \(schema)", .unfenced) { connection in
            try await connection.query(
                PostgresQuery(unsafeSQL: "DROP SCHEMA \"\(schema)\" CASCADE"), logger: logger)
        }
    }

    /// The size of this instance's schema on the server (tables and indexes), in MiB.
    package func schemaMiB() async throws -> Double {
        try await transaction("measure the schema", .snapshot) { connection in
            let rows = try await connection.query(
                """
                SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::float8 FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = current_schema() AND c.relkind = 'r'
                """, logger: logger)
            var bytes = 0.0
            for try await value in rows.decode(Double.self) { bytes = value }
            return bytes / 1_048_576
        }
    }

    // MARK: - Transactions

    /// How a transaction begins.
    enum TransactionKind {
        /// A write, checked against the lease fence once this instance holds the lease.
        case fenced
        /// A write of the lease itself.
        case unfenced
        /// A read-only snapshot.
        case snapshot

        var begin: String {
            switch self {
            case .fenced, .unfenced: "BEGIN"
            case .snapshot: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            }
        }
    }

    /// Runs `body` in one transaction on this instance's connection, after checking the lease
    /// fence for a fenced write. Errors say what was being done, and on which database.
    @discardableResult
    func transaction<T>(
        _ operation: String, _ kind: TransactionKind = .fenced, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        await gate.enter()
        defer { gate.leave() }
        let connection: PostgresConnection
        do {
            connection = try await openConnection()
        } catch StoreError.database(let path, "connect", let message) {
            // Name what could not be done, not only that the connection failed.
            throw StoreError.database(path: path, operation: operation, message: message)
        } catch {
            throw classify(error, operation: operation)
        }
        return try await inTransaction(connection, operation, kind) { connection in
            if kind == .fenced, let fenced = fence.withLock({ $0 }) {
                let (current, _) = try await fetchLease(connection, now: nil, lock: "FOR SHARE")
                guard let current, current.holder == fenced.holder, current.epoch == fenced.epoch else {
                    throw StoreError.leaseNotHeld(holder: fenced.holder, current: current)
                }
            }
            return try await body(connection)
        }
    }

    /// BEGIN, `body`, COMMIT; ROLLBACK when anything throws (a dropped connection is forgotten,
    /// so the next call connects again).
    func inTransaction<T>(
        _ connection: PostgresConnection, _ operation: String, _ kind: TransactionKind,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        do {
            try await connection.query(PostgresQuery(unsafeSQL: kind.begin), logger: logger)
            let value = try await body(connection)
            try await connection.query("COMMIT", logger: logger)
            return value
        } catch {
            if connection.isClosed {
                gate.connection = nil
            } else {
                do {
                    try await connection.query("ROLLBACK", logger: logger)
                } catch {
                    gate.connection = nil
                    _ = try? await connection.close()
                }
            }
            throw classify(error, operation: operation)
        }
    }

    /// The open connection, connecting (and preparing schema and master key, once) when there is
    /// none. Only while holding the gate.
    private func openConnection() async throws -> PostgresConnection {
        if let connection = gate.connection, !connection.isClosed { return connection }
        let connection = try await connect()
        if !gate.prepared {
            switch preparation {
            case .verify: try await verifySchema(connection)
            case .migrate: try await applyMigrations(connection)
            }
            try await verifyMasterKey(connection)
            gate.prepared = true
        }
        return connection
    }

    private func connect() async throws -> PostgresConnection {
        do {
            let connection = try await PostgresConnection.connect(
                configuration: configuration, id: Self.nextConnectionID.add(1, ordering: .relaxed).oldValue,
                logger: logger)
            gate.connection = connection
            return connection
        } catch {
            throw classify(error, operation: "connect")
        }
    }

    /// Turns postgres-nio's errors into `StoreError`s that say what was being done, where.
    func classify(_ error: any Error, operation: String) -> any Error {
        if error is StoreError || error is JoinTokenError { return error }
        let database = url.description
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                var text = message
                if let detail = error.serverInfo?[.detail] { text += " (\(detail))" }
                if let state = error.serverInfo?[.sqlState] { text += " [SQLSTATE \(state)]" }
                return StoreError.database(path: database, operation: operation, message: text)
            }
            switch error.code {
            case .connectionError:
                let reason = error.underlying.map { "\($0)" } ?? "no reason given"
                return StoreError.database(
                    path: database, operation: operation,
                    message: "cannot connect to \(url.host):\(url.port) (\(reason)); is the server running, "
                        + "and does the URL name it?")
            case .serverClosedConnection, .uncleanShutdown, .clientClosedConnection:
                return StoreError.database(
                    path: database, operation: operation,
                    message: "the connection to the server was lost; nothing of this transaction was committed")
            case .sslUnsupported:
                return StoreError.database(
                    path: database, operation: operation,
                    message: "the server does not offer TLS, which the URL's sslmode requires")
            case .authMechanismRequiresPassword:
                return StoreError.database(
                    path: database, operation: operation,
                    message: "the server asks for a password; set PGPASSWORD or add it to a passfile "
                        + "(~/.pgpass, or PGPASSFILE)")
            default:
                return StoreError.database(path: database, operation: operation, message: String(reflecting: error))
            }
        }
        if let error = error as? PostgresDecodingError {
            return StoreError.corrupt(path: database, reason: "column \(error.columnName) holds an unexpected value")
        }
        return StoreError.database(path: database, operation: operation, message: "\(error)")
    }

    // MARK: - Schema and master key

    /// The migration names this Meshward knows, in order.
    static var knownMigrations: [String] { PostgresSchema.migrations.map(\.name) }

    /// Refuses a database without the schema, or with one older or newer than this Meshward's.
    private func verifySchema(_ connection: PostgresConnection) async throws {
        try await inTransaction(connection, "check the schema", .snapshot) { connection in
            let exists = try await connection.query(
                "SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger
            ).collect().first?.decode(Bool.self)
            guard exists == true else { throw StoreError.schemaMissing(database: url.description) }
            let applied = try await appliedMigrations(connection)
            try checkNotNewer(applied)
            let missing = Self.knownMigrations.filter { !applied.contains($0) }
            guard missing.isEmpty else {
                throw applied.isEmpty
                    ? StoreError.schemaMissing(database: url.description)
                    : StoreError.schemaBehind(database: url.description, missing: missing)
            }
        }
    }

    private func appliedMigrations(_ connection: PostgresConnection) async throws -> Set<String> {
        var applied: Set<String> = []
        for try await name in try await connection.query("SELECT name FROM schema_migrations", logger: logger)
            .decode(String.self)
        {
            applied.insert(name)
        }
        return applied
    }

    private func checkNotNewer(_ applied: Set<String>) throws {
        let unknown = applied.subtracting(Self.knownMigrations).sorted()
        guard unknown.isEmpty else { throw StoreError.schemaAhead(database: url.description, unknown: unknown) }
    }

    /// Applies the missing migrations in one transaction; returns their names. Concurrent
    /// migrators wait on a transaction-scoped lock (released at commit, never held by a session).
    @discardableResult
    private func applyMigrations(_ connection: PostgresConnection) async throws -> [String] {
        try await inTransaction(connection, "migrate the schema", .unfenced) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext('meshward.migrate'))", logger: logger)
            if let schema {
                let quoted = "\"" + schema.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                try await connection.query(
                    PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(quoted)"), logger: logger)
            }
            try await connection.query(PostgresQuery(unsafeSQL: PostgresSchema.bookkeeping), logger: logger)
            let applied = try await appliedMigrations(connection)
            try checkNotNewer(applied)
            var names: [String] = []
            for migration in PostgresSchema.migrations where !applied.contains(migration.name) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (name) VALUES (\(migration.name))", logger: logger)
                names.append(migration.name)
            }
            for name in names {
                logger.notice("applied migration", metadata: ["store.url": "\(url)", "store.migration": "\(name)"])
            }
            return names
        }
    }

    /// Checks the master key against the value sealed at creation, sealing that value on first use.
    private func verifyMasterKey(_ connection: PostgresConnection) async throws {
        let cipher = try sealer.makeCipher()
        try await inTransaction(connection, "check the master key", .unfenced) { connection in
            let keys =
                try await connection.query("SELECT count(*) FROM generations", logger: logger)
                .collect().first?.decode(Int64.self) ?? 0
            var check = try await fetchMasterKeyCheck(connection)
            if check == nil {
                guard keys == 0 else {
                    throw StoreError.corrupt(
                        path: url.description, reason: "the master key check is missing while \(keys) sealed keys exist"
                    )
                }
                let sealed = try cipher.seal(
                    SealingContext.masterKeyCheckPlaintext, associatedData: SealingContext.masterKeyCheck)
                try await connection.query(
                    """
                    INSERT INTO master_key_check (id, seal_version, nonce, sealed_value, created_at)
                    VALUES (1, \(sealer.sealVersion), \(ByteBuffer(bytes: sealed.nonce)),
                        \(ByteBuffer(bytes: sealed.ciphertext)), \(Date().storedValue))
                    ON CONFLICT (id) DO NOTHING
                    """, logger: logger)
                check = try await fetchMasterKeyCheck(connection)
            }
            guard let check else { throw StoreError.corrupt(path: url.description, reason: "no master key check") }
            let opened = Self.unseal(check.nonce, check.sealed, SealingContext.masterKeyCheck, with: cipher)
            guard opened == SealingContext.masterKeyCheckPlaintext else {
                throw StoreError.masterKeyMismatch(path: masterKeyPath)
            }
        }
    }

    private func fetchMasterKeyCheck(
        _ connection: PostgresConnection
    ) async throws -> (nonce: [UInt8], sealed: [UInt8])? {
        let rows = try await connection.query(
            "SELECT nonce, sealed_value FROM master_key_check WHERE id = 1", logger: logger
        ).collect()
        guard let row = rows.first?.makeRandomAccess() else { return nil }
        return (try row.bytes(0), try row.bytes(1))
    }

    static func unseal(
        _ nonce: [UInt8], _ sealed: [UInt8], _ associatedData: [UInt8], with cipher: any KeySealingCipher
    ) -> [UInt8]? {
        nonce.withUnsafeBytes { nonce in
            sealed.withUnsafeBytes { sealed in
                associatedData.withUnsafeBytes { ad in
                    cipher.open(nonce: nonce, ciphertext: sealed, associatedData: ad)
                }
            }
        }
    }

    // MARK: - Lease rows

    /// The lease row (nil when nobody holds it) and the clock to judge it by: the caller's `now`
    /// with `LeaseClock.caller`, else the server's.
    func fetchLease(_ connection: PostgresConnection, now: Date?, lock: String) async throws -> (Lease?, Double) {
        let clock: Double? = leaseClock == .caller ? now?.storedValue : nil
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT holder, acquired_at, expires_at, epoch, coalesce($1::float8, meshward_now())
                    FROM lease WHERE id = 1 \(lock)
                    """,
                binds: {
                    var binds = PostgresBindings()
                    binds.append(clock)
                    return binds
                }()),
            logger: logger
        ).collect()
        guard let row = rows.first?.makeRandomAccess() else {
            throw StoreError.corrupt(path: url.description, reason: "the lease row is missing")
        }
        let databaseNow = try row[4].decode(Double.self)
        guard let holder = try row[0].decode(String?.self) else { return (nil, databaseNow) }
        let lease = Lease(
            holder: holder, acquiredAt: Date(storedValue: try row[1].decode(Double?.self) ?? databaseNow),
            expiresAt: Date(storedValue: try row[2].decode(Double?.self) ?? databaseNow),
            epoch: try row[3].decode(Int64.self))
        return (lease, databaseNow)
    }

    /// The stored epoch, held or not (a released lease keeps it).
    func storedEpoch(_ connection: PostgresConnection) async throws -> Int64 {
        try await connection.query("SELECT epoch FROM lease WHERE id = 1", logger: logger).collect().first?
            .decode(Int64.self) ?? 0
    }
}

extension PostgresRandomAccessRow {
    /// A bytea column's bytes.
    func bytes(_ index: Int) throws -> [UInt8] {
        let buffer = try self[index].decode(ByteBuffer.self)
        return Array(buffer.readableBytesView)
    }

    /// A nullable bytea column's bytes.
    func optionalBytes(_ index: Int) throws -> [UInt8]? {
        try self[index].decode(ByteBuffer?.self).map { Array($0.readableBytesView) }
    }
}
