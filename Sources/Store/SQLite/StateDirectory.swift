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
package struct StateDirectory {
    let path: String
    /// The master key: `master.key` in the directory, or the operator's own file.
    let masterKey: MasterKeyFile

    package init(path: String, masterKeyPath: String?) {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        self.path = trimmed
        self.masterKey = MasterKeyFile(
            path: masterKeyPath ?? trimmed + "/master.key", isExternal: masterKeyPath != nil)
    }

    var databasePath: String { path + "/state.sqlite" }
    /// The files SQLite keeps beside the database in WAL mode.
    var databaseCompanionPaths: [String] { [databasePath + "-wal", databasePath + "-shm"] }

    /// Creates the directory (0700) if it is missing; refuses one that others can access.
    package func prepareDirectory() throws(StoreError) {
        do {
            try PrivatePath.prepareDirectory(path, use: "use as the state directory")
        } catch {
            throw Self.storeError(error, path: path)
        }
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

    static func modeIfExists(of path: String) throws(StoreError) -> mode_t? {
        do {
            return try PrivatePath.modeIfExists(of: path)
        } catch {
            throw storeError(error, path: path)
        }
    }

    static func requirePrivate(_ path: String, mode: mode_t, fix: String) throws(StoreError) {
        do {
            try PrivatePath.requirePrivate(mode: mode, fix: fix)
        } catch {
            throw storeError(error, path: path)
        }
    }

    /// The Store's error for a `PrivatePath` problem with `path`.
    static func storeError(_ problem: PrivatePath.Problem, path: String) -> StoreError {
        switch problem {
        case .fileSystem(let operation, let errno): .fileSystem(path: path, operation: operation, errno: errno)
        case .insecurePermissions(let mode, let fix): .insecurePermissions(path: path, mode: mode, fix: fix)
        }
    }
}
