#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The permission rule of the directories that hold Meshward's secrets and state (the state
/// directory, the agent directory): the directory 0700 and every file in it 0600. A directory or
/// file that group or others may access is refused, never repaired: the operator must notice
/// that someone loosened it. Each caller turns a `Problem` into its own module's error.
public enum PrivatePath {
    /// Why a path cannot be used as a private one.
    public enum Problem: Error, Equatable, Sendable {
        /// A system call failed: `operation` on the path, with `errno`.
        case fileSystem(operation: String, errno: Int32)
        /// Group or others may access the path: `mode` is its permission bits, `fix` the command
        /// that repairs it.
        case insecurePermissions(mode: UInt32, fix: String)
    }

    /// Creates `path` as a directory of mode 0700 when it is missing; refuses one that is not a
    /// directory (`ENOTDIR` while doing `use`, e.g. "use as the state directory") or that group
    /// or others may access (the fix is `chmod 700 PATH`).
    public static func prepareDirectory(_ path: String, use: String) throws(Problem) {
        if mkdir(path, 0o700) != 0 {
            let error = errno
            guard error == EEXIST else { throw .fileSystem(operation: "create directory", errno: error) }
        }
        guard let mode = try modeIfExists(of: path) else { throw .fileSystem(operation: "stat", errno: ENOENT) }
        guard mode & S_IFMT == S_IFDIR else { throw .fileSystem(operation: use, errno: ENOTDIR) }
        try requirePrivate(mode: mode, fix: "chmod 700 \(path)")
    }

    /// The mode of `path` (`stat`, following links); nil when nothing is there.
    public static func modeIfExists(of path: String) throws(Problem) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw .fileSystem(operation: "stat", errno: errno)
        }
        return info.st_mode
    }

    /// Refuses `mode` when it lets group or others access the path, naming `fix`.
    public static func requirePrivate(mode: mode_t, fix: String) throws(Problem) {
        guard mode & 0o077 == 0 else {
            throw .insecurePermissions(mode: UInt32(mode & 0o7777), fix: fix)
        }
    }
}
