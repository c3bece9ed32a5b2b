import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether a state directory can be read, before anything is opened: a directory this user may
/// not enter looks exactly like a missing one to `FileManager.fileExists`, and must never be
/// taken for "no state yet".
enum StateAccess {
    /// True when `directory` holds `state.sqlite`; false when either is missing. Throws
    /// `ControllerError.permissionDenied` naming the directory or the database when it exists
    /// (or may exist) but this user cannot read it.
    static func storeExists(in directory: String) throws -> Bool {
        guard try exists(directory, access: R_OK | X_OK) else { return false }
        let database = (directory.hasSuffix("/") ? directory : directory + "/") + "state.sqlite"
        return try exists(database, access: R_OK)
    }

    /// Whether `path` exists and `mode` access to it is granted.
    private static func exists(_ path: String, access mode: Int32) throws -> Bool {
        var info = stat()
        if stat(path, &info) != 0 {
            let error = errno
            if error == ENOENT || error == ENOTDIR { return false }
            if error == EACCES || error == EPERM { throw ControllerError.permissionDenied(path: path) }
            throw ControllerError.stateUnreadable(path: path, reason: String(cString: strerror(error)))
        }
        if access(path, mode) != 0 {
            let error = errno
            if error == EACCES || error == EPERM { throw ControllerError.permissionDenied(path: path) }
        }
        return true
    }
}
