import Foundation
import GRDB
import Kernel
import MeshwardCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The SQLite file a simulated fleet is saved in: a `fleet` row (format version, the fleet's
/// clock, and a random token drawn anew by every save) and a `nodes` table with one row per
/// node, whose `body` is the node's compact binary encoding (`SimulatedNode.encodedBody()`).
///
/// One row per node lets a save rewrite only the nodes that changed since the state the file
/// was last known to hold (a `Baseline`): a pass that touches ten nodes of a thousand writes
/// ten rows. The token tells a save whether the file still holds its baseline; when another
/// writer came in between, the save rewrites every row instead of trusting a stale baseline.
///
/// Every write is one transaction (journal mode DELETE, `synchronous = FULL`): a crash leaves
/// the old state or the new one, never a mix. The file is created 0600 before SQLite opens it,
/// and SQLite gives its journal the database's mode.
struct SimulatedFleetFile {
    /// The file's path.
    let path: String

    /// What a file held when this process last loaded or saved it.
    struct Baseline: Sendable {
        /// The file it describes.
        let path: String
        /// The state the file held.
        let state: SimulatedFleetState
        /// The token of that save.
        let token: Int64
    }

    /// Tells a simulated fleet file apart from any other SQLite database (`PRAGMA application_id`,
    /// "MWSF").
    static let applicationID: Int32 = 0x4D57_5346

    /// The version of the file's tables; a file of another version is refused.
    static let formatVersion = 2

    /// The companions SQLite may keep beside the database; each must be as private as the file.
    static let companionSuffixes = ["-journal", "-wal", "-shm"]

    init(path: String) {
        self.path = path
    }

    // MARK: - Reading

    /// The file's state, or nil when there is no file, or only one whose first save never
    /// committed (it holds no tables).
    func read() throws(SimulatedFleetPersistenceError) -> Baseline? {
        try reading { db in try readState(db) }
    }

    /// `body` in a read transaction of the file, once the file and its companions are known to
    /// be private; nil when there is no file. SQLite's errors become the file's: one that says
    /// the file could not be reached (busy, locked, unreadable: no verdict on its contents), or
    /// that it is not a fleet.
    private func reading<Value>(
        _ body: (Database) throws -> Value?
    ) throws(SimulatedFleetPersistenceError) -> Value? {
        guard try Self.requirePrivate(path) else { return nil }
        for suffix in Self.companionSuffixes { _ = try Self.requirePrivate(path + suffix) }
        do {
            let queue = try openQueue()
            return try queue.read { db in try body(db) }
        } catch let error as SimulatedFleetPersistenceError {
            throw error
        } catch let error as DatabaseError where Self.isAccessFailure(error) {
            throw failure("cannot be read: \(error)")
        } catch {
            throw notAFleet(error)
        }
    }

    /// What the owner of `reqid` observes on each of `nodes` the file holds, each row decoded
    /// straight into its observation (`SimulatedNode.observation(body:reqid:)`): no node's
    /// tables are built, and rows of other nodes are not decoded. Nil when there is no file, or
    /// one that holds no tables. Refuses what `read()` refuses.
    func readObservations(
        of nodes: Set<String>, reqid: Reqid
    ) throws(SimulatedFleetPersistenceError) -> [String: Result<NodeObservation, KernelError>]? {
        try reading { db -> [String: Result<NodeObservation, KernelError>]? in
            guard try readHeader(db) != nil else { return nil }
            var observations: [String: Result<NodeObservation, KernelError>] = [:]
            try forEachDecodedRow(
                db, wanted: { nodes.contains($0) },
                decode: { body throws(BinaryDecodingError) in try SimulatedNode.observation(body: body, reqid: reqid) }
            ) { name, decoded in
                guard decoded.name == name else { throw corruptNode(name, "its body names node \(decoded.name)") }
                observations[name] = decoded.observation
            }
            return observations
        }
    }

    /// True for an error that says the file could not be reached (locked, unreadable, out of
    /// memory), not that it holds something other than a fleet.
    private static func isAccessFailure(_ error: DatabaseError) -> Bool {
        let codes: [ResultCode] = [
            .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_IOERR, .SQLITE_READONLY,
            .SQLITE_NOMEM, .SQLITE_FULL,
        ]
        return codes.contains(error.resultCode.primaryResultCode)
    }

    /// How many bytes of bodies are decoded together, in parallel.
    private static let decodeBatchBytes = 32 << 20

    /// Decodes the body of every row `wanted` accepts with `decode`, and hands each value to
    /// `take` with its row's name, in the order the rows are read. Bodies are copied out in
    /// batches and decoded on every core: decoding costs many times the reading. A body that
    /// does not decode is refused naming its node.
    private func forEachDecodedRow<Value: Sendable>(
        _ db: Database, wanted: (String) -> Bool = { _ in true },
        decode: @escaping @Sendable (UnsafeRawBufferPointer) throws(BinaryDecodingError) -> Value,
        _ take: (_ name: String, _ value: Value) throws -> Void
    ) throws {
        var batch: [(name: String, body: [UInt8])] = []
        var batchBytes = 0
        func decodeBatch() throws {
            let entries = batch
            let results = Mutex([Result<Value, BinaryDecodingError>?](repeating: nil, count: entries.count))
            DispatchQueue.concurrentPerform(iterations: entries.count) { index in
                let result: Result<Value, BinaryDecodingError>
                do {
                    result = .success(try entries[index].body.withUnsafeBytes { try decode($0) })
                } catch let error as BinaryDecodingError {
                    result = .failure(error)
                } catch {
                    result = .failure(.invalid("\(error)", offset: 0))
                }
                results.withLock { $0[index] = result }
            }
            for (entry, result) in zip(entries, results.withLock { $0 }) {
                switch result {
                case .success(let value): try take(entry.name, value)
                case .failure(let error): throw corruptNode(entry.name, error.description)
                case nil: throw corruptNode(entry.name, "its body was not decoded")
                }
            }
            batch.removeAll(keepingCapacity: true)
            batchBytes = 0
        }
        let rows = try Row.fetchCursor(db, sql: "SELECT name, body FROM nodes")
        while let row = try rows.next() {
            let name: String = row[0]
            guard wanted(name) else { continue }
            let body = try row.withUnsafeData(atIndex: 1) { data in data.map { [UInt8]($0) } ?? [] }
            batch.append((name, body))
            batchBytes += body.count
            if batchBytes >= Self.decodeBatchBytes { try decodeBatch() }
        }
        try decodeBatch()
    }

    private func readState(_ db: Database) throws -> Baseline? {
        guard let header = try readHeader(db) else { return nil }
        var state = SimulatedFleetState(currentTime: header.currentTime)
        let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM nodes") ?? 0
        var nodes = [String: SimulatedNode](minimumCapacity: count)
        try forEachDecodedRow(db, decode: { body throws(BinaryDecodingError) in try SimulatedNode(body: body) }) {
            name, node in
            guard node.name == name else { throw corruptNode(name, "its body names node \(node.name)") }
            nodes[name] = node
        }
        state.nodes = nodes
        state.rebuildAddressIndex()
        return Baseline(path: path, state: state, token: header.token)
    }

    /// The `fleet` row, or nil for a file that holds no tables at all. Refuses any other
    /// database, and a fleet of another format version.
    private func readHeader(_ db: Database) throws -> (currentTime: UInt64, token: Int64)? {
        let applicationID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
        if applicationID == 0, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master") == 0 {
            return nil
        }
        guard applicationID == Self.applicationID else {
            throw failure("is not a simulated fleet (another SQLite database); move it away to start empty")
        }
        guard let row = try Row.fetchOne(db, sql: "SELECT format_version, clock, token FROM fleet WHERE id = 1") else {
            throw failure("is not a simulated fleet (its fleet row is missing); move it away to start empty")
        }
        let version: Int = row[0]
        guard version == Self.formatVersion else {
            throw failure(
                "holds simulated fleet format \(version), which this Meshward cannot read (it reads "
                    + "\(Self.formatVersion)); move it away to start empty")
        }
        let clock: Int64 = row[1]
        return (UInt64(bitPattern: clock), row[2])
    }

    // MARK: - Writing

    /// Writes `state`: only the nodes that differ from `baseline`, when the file still holds
    /// it; otherwise every node. Returns what was written and the file's new baseline.
    func write(
        _ state: SimulatedFleetState, since baseline: Baseline?
    ) throws(SimulatedFleetPersistenceError)
        -> (summary: SimulatedFleetSaveSummary, baseline: Baseline)
    {
        try createPrivately()
        let token = Int64.random(in: Int64.min...Int64.max)
        do {
            let queue = try openQueue()
            // GRDB writes in an IMMEDIATE transaction: no other writer comes in between the
            // read of the token and the rows written against it.
            let summary = try queue.write { db in try write(state, since: baseline, token: token, db) }
            return (summary, Baseline(path: path, state: state, token: token))
        } catch let error as SimulatedFleetPersistenceError {
            throw error
        } catch {
            throw failure("cannot be written: \(error)")
        }
    }

    private func write(
        _ state: SimulatedFleetState, since baseline: Baseline?, token: Int64, _ db: Database
    ) throws -> SimulatedFleetSaveSummary {
        let previousToken: Int64?
        if let header = try readHeader(db) {
            previousToken = header.token
        } else {
            try createTables(db)
            previousToken = nil
        }
        try db.execute(
            sql: "UPDATE fleet SET clock = ?, token = ? WHERE id = 1",
            arguments: [Int64(bitPattern: state.currentTime), token])
        let upsert = try db.cachedStatement(
            sql: "INSERT INTO nodes (name, body) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET body = excluded.body")
        guard let baseline, baseline.path == path, baseline.token == previousToken else {
            try db.execute(sql: "DELETE FROM nodes")
            for (name, node) in state.nodes {
                try upsert.execute(arguments: [name, Data(node.encodedBody())])
            }
            return SimulatedFleetSaveSummary(
                rewroteEverything: true, writtenNodes: state.nodes.keys.sorted(), removedNodes: [])
        }
        var written: [String] = []
        for (name, node) in state.nodes where baseline.state.nodes[name] != node {
            try upsert.execute(arguments: [name, Data(node.encodedBody())])
            written.append(name)
        }
        var removed: [String] = []
        let delete = try db.cachedStatement(sql: "DELETE FROM nodes WHERE name = ?")
        for name in baseline.state.nodes.keys where state.nodes[name] == nil {
            try delete.execute(arguments: [name])
            removed.append(name)
        }
        return SimulatedFleetSaveSummary(
            rewroteEverything: false, writtenNodes: written.sorted(), removedNodes: removed.sorted())
    }

    private func createTables(_ db: Database) throws {
        try db.execute(
            sql: """
                PRAGMA application_id = \(Self.applicationID);
                CREATE TABLE fleet (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    format_version INTEGER NOT NULL,
                    clock INTEGER NOT NULL,
                    token INTEGER NOT NULL
                );
                CREATE TABLE nodes (name TEXT PRIMARY KEY NOT NULL, body BLOB NOT NULL);
                INSERT INTO fleet (id, format_version, clock, token) VALUES (1, \(Self.formatVersion), 0, 0);
                """)
    }

    // MARK: - Files

    /// Creates the file 0600 when it is missing, before SQLite opens it (SQLite would create it
    /// with the umask's mode); refuses an existing one that group or others may access.
    private func createPrivately() throws(SimulatedFleetPersistenceError) {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw failure("cannot be created: \(String(cString: strerror(errno)))")
        }
        close(descriptor)
        _ = try Self.requirePrivate(path)
    }

    private func openQueue() throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.label = "meshward.simulated-fleet"
        // Two processes (a loop and `meshward status`) may open the file at once.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        return try DatabaseQueue(path: path, configuration: configuration)
    }

    /// True when a file is at `path` and only its owner may access it; false when none is;
    /// throws the `chmod` that fixes a loose one.
    @discardableResult
    static func requirePrivate(_ path: String) throws(SimulatedFleetPersistenceError) -> Bool {
        let mode: mode_t?
        do {
            mode = try PrivatePath.modeIfExists(of: path)
            if let mode { try PrivatePath.requirePrivate(mode: mode, fix: "chmod 600 \(path)") }
        } catch {
            switch error {
            case .insecurePermissions(let mode, let fix):
                throw SimulatedFleetPersistenceError(
                    path: path,
                    reason: "has mode \(String(mode, radix: 8)), which lets other users read or change it; "
                        + "run '\(fix)' and retry")
            case .fileSystem(let operation, let errno):
                throw SimulatedFleetPersistenceError(
                    path: path, reason: "cannot \(operation): \(String(cString: strerror(errno)))")
            }
        }
        return mode != nil
    }

    private func failure(_ reason: String) -> SimulatedFleetPersistenceError {
        SimulatedFleetPersistenceError(path: path, reason: reason)
    }

    private func notAFleet(_ error: any Error) -> SimulatedFleetPersistenceError {
        failure("is not a simulated fleet (\(error)); move it away to start empty")
    }

    private func corruptNode(_ name: String, _ reason: String) -> SimulatedFleetPersistenceError {
        failure("node \(name) cannot be read: \(reason); move the file away to start empty")
    }
}
