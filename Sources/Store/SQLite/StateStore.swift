import Foundation
import GRDB
import Logging
import MeshwardCore
import Synchronization

/// The controller's durable state in SQLite: channels and their generations (keys sealed under
/// the master key), the reconciler's per-channel step, applied spec revisions, a journal of
/// kernel operations, a writer lease and a little metadata. The first `ControllerStore`: it
/// plays every role, and its methods are synchronous (SQLite is on this host), which satisfies
/// the roles' `async` requirements.
///
/// On disk it is one SQLite database in WAL mode, `state.sqlite`, in a 0700 directory, beside the
/// 0600 master key `master.key` (or with the operator's key file elsewhere); keys are sealed by
/// its `KeySealer`, which alone holds the master key. Every call is one transaction, so a controller killed at any
/// instant finds each channel exactly as the last completed call left it.
///
/// Once this instance has acquired the lease, every write first checks, inside its transaction,
/// that the lease still names the same holder: a controller whose lease another one took over
/// cannot write (`StoreError.leaseNotHeld`). Safe to use from any thread.
public final class StateStore: Sendable {
    /// The state directory; nil for an in-memory store.
    public let directory: String?
    /// The database file (`:memory:` for an in-memory store), for messages.
    let databasePath: String
    /// The master key file; nil for an in-memory store.
    let masterKeyPath: String?
    let writer: any DatabaseWriter
    let sealer: any KeySealer
    let logger: Logger
    /// The SPIs this store issues from. Narrowed only by tests, to reach exhaustion.
    let spiRange: ClosedRange<UInt32>
    /// The holder and epoch this instance acquired the lease under; writes are fenced by them.
    let fence = Mutex<LeaseFence?>(nil)

    /// The lease this instance writes under.
    struct LeaseFence: Sendable, Hashable {
        var holder: String
        var epoch: Int64
    }

    private init(
        directory: String?, databasePath: String, masterKeyPath: String?, writer: any DatabaseWriter,
        sealer: any KeySealer, logger: Logger, spiRange: ClosedRange<UInt32>
    ) {
        self.directory = directory
        self.databasePath = databasePath
        self.masterKeyPath = masterKeyPath
        self.writer = writer
        self.sealer = sealer
        self.logger = logger
        self.spiRange = spiRange
    }

    /// Opens the state directory, creating it on first use.
    ///
    /// Creates the directory (0700), `state.sqlite` (0600, WAL mode) and, unless `masterKeyPath`
    /// names the operator's own key file, `master.key` (0600, 32 bytes from OpenSSL's CSPRNG).
    /// Refuses an existing directory, database or key file that group or others may access (the
    /// error says which `chmod` fixes it), an operator's key file that is missing (it is never
    /// created), unreadable or not 32 bytes, a missing `master.key` while the database holds
    /// sealed keys, a master key the database's keys were not sealed under (told by a value
    /// sealed at creation, before any key is unsealed), and a database that fails SQLite's
    /// `quick_check`. Runs pending migrations.
    public static func open(directory: String, masterKeyPath: String? = nil, logger: Logger) throws -> StateStore {
        try open(directory: directory, masterKeyPath: masterKeyPath, logger: logger, spiRange: defaultSPIRange)
    }

    /// An in-memory store: nothing touches the disk. For tests and benchmarks.
    public static func inMemory(masterKey: KeyMaterial, logger: Logger) throws -> StateStore {
        try inMemory(masterKey: masterKey, logger: logger, spiRange: defaultSPIRange)
    }

    /// An in-memory store whose keys `sealer` seals: nothing touches the disk.
    public static func inMemory(sealer: any KeySealer, logger: Logger) throws -> StateStore {
        try inMemory(sealer: sealer, logger: logger, spiRange: defaultSPIRange)
    }

    package static let defaultSPIRange = SPI.minimumIssued...UInt32.max

    static func open(
        directory: String, masterKeyPath: String?, logger: Logger, spiRange: ClosedRange<UInt32>
    ) throws -> StateStore {
        let files = StateDirectory(path: directory, masterKeyPath: masterKeyPath)
        try files.prepareDirectory()
        return try files.withSetupLock {
            try open(files, logger: logger, spiRange: spiRange)
        }
    }

    private static func open(
        _ files: StateDirectory, logger: Logger, spiRange: ClosedRange<UInt32>
    ) throws -> StateStore {
        let existed = try files.prepareDatabaseFile()
        let path = files.databasePath
        // Read the key before SQLite touches the files: a key file with loose permissions is
        // refused before anything else happens.
        let existingKey = try files.masterKey.load()

        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: configuration())
        } catch let error as DatabaseError {
            throw classify(error, path: path, operation: "open")
        }
        try checkQuickly(pool, path: path)
        try migrate(pool, path: path)

        let hasCheck = try perform(path: path, operation: "read the master key check") {
            try pool.read { db in try Bool.fetchOne(db, sql: "SELECT COUNT(*) > 0 FROM master_key_check") ?? false }
        }
        let masterKey: KeyMaterial
        let keyPath = files.masterKey.path
        if let existingKey {
            masterKey = existingKey
        } else if files.masterKey.isExternal {
            throw StoreError.masterKeyFileMissing(path: keyPath)
        } else if hasCheck {
            throw StoreError.masterKeyMissing(path: keyPath)
        } else {
            masterKey = try KeyMaterial.random(count: AESGCMKeySealer.masterKeyLength)
            try files.masterKey.create(masterKey)
            logger.notice("created master key", metadata: ["store.master_key": "\(keyPath)"])
        }
        let sealer: any KeySealer
        do {
            sealer = try AESGCMKeySealer(masterKey: masterKey)
        } catch {
            throw StoreError.masterKeyInvalid(path: keyPath, reason: error.description)
        }
        let store = StateStore(
            directory: files.path, databasePath: path, masterKeyPath: keyPath, writer: pool,
            sealer: sealer, logger: logger, spiRange: spiRange)
        try store.verifyMasterKey()
        logger.info(
            "opened state store",
            metadata: ["store.path": "\(path)", "store.created": "\(!existed)"])
        return store
    }

    static func inMemory(masterKey: KeyMaterial, logger: Logger, spiRange: ClosedRange<UInt32>) throws -> StateStore {
        let sealer: any KeySealer
        do {
            sealer = try AESGCMKeySealer(masterKey: masterKey)
        } catch {
            throw StoreError.masterKeyInvalid(path: "(in memory)", reason: error.description)
        }
        return try inMemory(sealer: sealer, logger: logger, spiRange: spiRange)
    }

    static func inMemory(sealer: any KeySealer, logger: Logger, spiRange: ClosedRange<UInt32>) throws -> StateStore {
        let path = ":memory:"
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(configuration: configuration())
        } catch let error as DatabaseError {
            throw classify(error, path: path, operation: "open")
        }
        try migrate(queue, path: path)
        let store = StateStore(
            directory: nil, databasePath: path, masterKeyPath: nil, writer: queue, sealer: sealer, logger: logger,
            spiRange: spiRange)
        try store.verifyMasterKey()
        return store
    }

    /// Another instance on this store's database, as a second controller process holds one: the
    /// same database and sealer, its own lease fence. For an in-memory store, which no second
    /// `open` can reach.
    func sharingDatabase() -> StateStore {
        StateStore(
            directory: directory, databasePath: databasePath, masterKeyPath: masterKeyPath, writer: writer,
            sealer: sealer, logger: logger, spiRange: spiRange)
    }

    /// Runs SQLite's full `integrity_check` (every page and index; slow on a large store) and
    /// throws `StoreError.corrupt` unless it reports `ok`. `open` runs the faster `quick_check`.
    public func verifyIntegrity() throws {
        let problems = try read("check integrity") { db in
            try String.fetchAll(db, sql: "PRAGMA integrity_check")
        }
        guard problems == ["ok"] else {
            throw StoreError.corrupt(path: databasePath, reason: problems.prefix(5).joined(separator: "; "))
        }
        let violations = try read("check foreign keys") { db in try Row.fetchAll(db, sql: "PRAGMA foreign_key_check") }
        guard violations.isEmpty else {
            throw StoreError.corrupt(path: databasePath, reason: "\(violations.count) rows refer to missing rows")
        }
    }

    // MARK: - Plumbing

    private static func configuration() -> Configuration {
        var configuration = Configuration()
        configuration.label = "meshward.store"
        configuration.foreignKeysEnabled = true
        // Another process (a second controller, `meshward status`) may hold the write lock briefly.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // A commit the controller reported must survive a power cut, not only a crash: the
            // kernel may already hold the keys it committed.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        return configuration
    }

    private static func checkQuickly(_ pool: DatabasePool, path: String) throws {
        let result = try perform(path: path, operation: "check integrity") {
            try pool.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
        }
        guard result == ["ok"] else {
            throw StoreError.corrupt(path: path, reason: result.prefix(5).joined(separator: "; "))
        }
    }

    private static func migrate(_ writer: any DatabaseWriter, path: String) throws {
        let migrator = StoreSchema.migrator
        try perform(path: path, operation: "migrate the schema") {
            let superseded = try writer.read { db in try migrator.hasBeenSuperseded(db) }
            guard !superseded else {
                throw StoreError.corrupt(
                    path: path,
                    reason: "it was written by a newer Meshward (unknown schema migrations); upgrade Meshward")
            }
            try migrator.migrate(writer)
        }
    }

    /// Checks the master key against the value sealed at creation, sealing that value on first use.
    private func verifyMasterKey() throws {
        let cipher = try sealer.makeCipher()
        try writer.write { db in
            if let row = try Row.fetchOne(db, sql: "SELECT nonce, sealed_value FROM master_key_check WHERE id = 1") {
                let nonce: Data = row[0]
                let sealed: Data = row[1]
                let opened = nonce.withUnsafeBytes { nonce in
                    sealed.withUnsafeBytes { sealed in
                        SealingContext.masterKeyCheck.withUnsafeBytes { ad in
                            cipher.open(nonce: nonce, ciphertext: sealed, associatedData: ad)
                        }
                    }
                }
                guard opened == SealingContext.masterKeyCheckPlaintext else {
                    throw StoreError.masterKeyMismatch(path: masterKeyPath)
                }
                return
            }
            let keys = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM generations") ?? 0
            guard keys == 0 else {
                throw StoreError.corrupt(
                    path: databasePath, reason: "the master key check is missing while \(keys) sealed keys exist")
            }
            let sealed = try cipher.seal(
                SealingContext.masterKeyCheckPlaintext, associatedData: SealingContext.masterKeyCheck)
            try db.execute(
                sql: """
                    INSERT INTO master_key_check (id, seal_version, nonce, sealed_value, created_at)
                    VALUES (1, ?, ?, ?, ?)
                    """,
                arguments: [sealer.sealVersion, Data(sealed.nonce), Data(sealed.ciphertext), Date().storedValue])
        }
    }

    /// Runs `body` in one write transaction, after checking the lease fence.
    func write<T>(_ operation: String, _ body: (Database) throws -> T) throws -> T {
        let fenced = fence.withLock { $0 }
        return try Self.perform(path: databasePath, operation: operation) {
            try writer.write { db in
                if let fenced {
                    let current = try Self.fetchLease(db)
                    guard let current, current.holder == fenced.holder, current.epoch == fenced.epoch else {
                        throw StoreError.leaseNotHeld(holder: fenced.holder, current: current)
                    }
                }
                return try body(db)
            }
        }
    }

    /// Runs `body` in one write transaction without the lease fence (for the lease itself).
    func writeUnfenced<T>(_ operation: String, _ body: (Database) throws -> T) throws -> T {
        try Self.perform(path: databasePath, operation: operation) { try writer.write(body) }
    }

    /// Runs `body` in one read transaction: a consistent snapshot.
    func read<T>(_ operation: String, _ body: (Database) throws -> T) throws -> T {
        try Self.perform(path: databasePath, operation: operation) { try writer.read(body) }
    }

    /// Runs `body`, turning SQLite's errors into `StoreError`s that say what was being done.
    static func perform<T>(path: String, operation: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as DatabaseError {
            throw classify(error, path: path, operation: operation)
        } catch let error as SealingError {
            throw StoreError.database(path: path, operation: operation, message: error.description)
        }
    }

    static func classify(_ error: DatabaseError, path: String, operation: String) -> StoreError {
        switch error.resultCode {
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return .corrupt(path: path, reason: error.message ?? "\(error.resultCode)")
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return .database(
                path: path, operation: operation,
                message: "the database stayed locked by another process for 10 s; is another controller running?")
        default:
            return .database(path: path, operation: operation, message: error.message ?? "\(error.resultCode)")
        }
    }

    static func fetchLease(_ db: Database) throws -> Lease? {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT holder, acquired_at, expires_at, epoch FROM lease WHERE id = 1")
        else { return nil }
        return Lease(
            holder: row[0], acquiredAt: Date(storedValue: row[1]), expiresAt: Date(storedValue: row[2]),
            epoch: row[3])
    }
}
