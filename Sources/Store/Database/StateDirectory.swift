import MeshwardCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The files of an on-disk store and the permission rules they must follow.
///
/// The directory is 0700 and every file in it 0600: the master key opens every key, and the
/// database names every SPI. Files are created with those modes (never widened by the umask),
/// and an existing directory or file that group or others may access is refused, not repaired:
/// the operator must notice that someone loosened it.
struct StateDirectory {
    let path: String
    let masterKeyPath: String
    /// True when the operator named the master key file (then the store never creates it).
    let masterKeyIsExternal: Bool

    init(path: String, masterKeyPath: String?) {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        self.path = trimmed
        self.masterKeyPath = masterKeyPath ?? trimmed + "/master.key"
        self.masterKeyIsExternal = masterKeyPath != nil
    }

    var databasePath: String { path + "/state.sqlite" }
    /// The files SQLite keeps beside the database in WAL mode.
    var databaseCompanionPaths: [String] { [databasePath + "-wal", databasePath + "-shm"] }

    /// Creates the directory (0700) if it is missing; refuses one that others can access.
    func prepareDirectory() throws(StoreError) {
        if mkdir(path, 0o700) != 0 {
            let error = errno
            guard error == EEXIST else { throw .fileSystem(path: path, operation: "create directory", errno: error) }
        }
        let mode = try Self.mode(of: path)
        guard mode & S_IFMT == S_IFDIR else {
            throw .fileSystem(path: path, operation: "use as the state directory", errno: ENOTDIR)
        }
        try Self.requirePrivate(path, mode: mode, fix: "chmod 700 \(path)")
    }

    /// Holds an exclusive `flock` on the directory until `body` returns, so that two processes
    /// opening one state directory for the first time do not both create the master key or both
    /// run the migrations. (Not the database file: closing another descriptor of it would drop
    /// SQLite's own POSIX locks.)
    func withSetupLock<T>(_ body: () throws -> T) throws -> T {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StoreError.fileSystem(path: path, operation: "open", errno: errno) }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw StoreError.fileSystem(path: path, operation: "lock", errno: errno) }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    /// Creates the database file (0600, empty) if it is missing, so that SQLite never creates it
    /// with its default 0644; refuses an existing database or WAL file that others can access.
    /// Returns true when the database already existed.
    func prepareDatabaseFile() throws(StoreError) -> Bool {
        var existed = true
        let descriptor = open(databasePath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor >= 0 {
            existed = false
            close(descriptor)
        } else if errno != EEXIST {
            throw .fileSystem(path: databasePath, operation: "create", errno: errno)
        }
        for file in [databasePath] + databaseCompanionPaths {
            guard let mode = try Self.modeIfExists(of: file) else { continue }
            try Self.requirePrivate(file, mode: mode, fix: "chmod 600 \(file)")
        }
        return existed
    }

    /// Reads the master key, or nil when the file does not exist. Refuses a file that others can
    /// access or that is not exactly one master key.
    func readMasterKey() throws(StoreError) -> KeyMaterial? {
        guard let mode = try Self.modeIfExists(of: masterKeyPath) else { return nil }
        try Self.requirePrivate(masterKeyPath, mode: mode, fix: "chmod 600 \(masterKeyPath)")
        let descriptor = open(masterKeyPath, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .fileSystem(path: masterKeyPath, operation: "open", errno: errno) }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: KeySealer.masterKeyLength + 1)
        var total = 0
        while total < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer in
                read(descriptor, buffer.baseAddress.map { $0 + total }, buffer.count - total)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw .fileSystem(path: masterKeyPath, operation: "read", errno: errno)
            }
            if count == 0 { break }
            total += count
        }
        guard total == KeySealer.masterKeyLength else {
            throw .masterKeyInvalid(
                path: masterKeyPath,
                reason: total > KeySealer.masterKeyLength
                    ? "it is longer than \(KeySealer.masterKeyLength) bytes"
                    : "it holds \(total) bytes, a master key is \(KeySealer.masterKeyLength)")
        }
        return KeyMaterial(bytes: Array(bytes.prefix(total)))
    }

    /// Creates the master key file (0600) holding `key`. Written to a temporary file, flushed,
    /// then linked into place, so a crash leaves either no key file or a whole one, and a key
    /// file that appeared meanwhile is never overwritten.
    func writeMasterKey(_ key: KeyMaterial) throws(StoreError) {
        let temporary = masterKeyPath + ".new-\(getpid())"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .fileSystem(path: temporary, operation: "create", errno: errno) }
        defer { unlink(temporary) }
        let written = key.bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        let error = errno
        close(descriptor)
        guard written == key.count, synced else {
            throw .fileSystem(path: temporary, operation: "write", errno: error)
        }
        guard link(temporary, masterKeyPath) == 0 else {
            throw .fileSystem(path: masterKeyPath, operation: "create", errno: errno)
        }
        Self.syncDirectory(of: masterKeyPath)
    }

    private static func syncDirectory(of file: String) {
        let parent = file.lastIndex(of: "/").map { String(file[..<$0]) } ?? "."
        let descriptor = open(parent.isEmpty ? "/" : parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    static func mode(of path: String) throws(StoreError) -> mode_t {
        guard let mode = try modeIfExists(of: path) else {
            throw .fileSystem(path: path, operation: "stat", errno: ENOENT)
        }
        return mode
    }

    static func modeIfExists(of path: String) throws(StoreError) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw .fileSystem(path: path, operation: "stat", errno: errno)
        }
        return info.st_mode
    }

    private static func requirePrivate(_ path: String, mode: mode_t, fix: String) throws(StoreError) {
        guard mode & 0o077 == 0 else {
            throw .insecurePermissions(path: path, mode: UInt32(mode & 0o7777), fix: fix)
        }
    }
}
