import MeshwardCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file that holds the master key: `master.key` in the state directory (created on first
/// use), or a file the operator names with `--master-key-file` (never created, so that replicas
/// sharing one key cannot each invent their own).
///
/// The file must be exactly 32 bytes and private to its owner (mode 0600 or stricter): it opens
/// every key in the Store.
package struct MasterKeyFile {
    package let path: String
    /// True when the operator named the file (then the store never creates it).
    package let isExternal: Bool

    package init(path: String, isExternal: Bool) {
        self.path = path
        self.isExternal = isExternal
    }

    /// Reads the master key, or nil when the file does not exist. Refuses a file that others can
    /// access (`insecurePermissions`), that this user cannot read (`masterKeyUnreadable`) or that
    /// is not exactly one master key (`masterKeyInvalid`).
    package func load() throws(StoreError) -> KeyMaterial? {
        let mode: mode_t
        do {
            guard let found = try StateDirectory.modeIfExists(of: path) else { return nil }
            mode = found
        } catch {
            guard case .fileSystem(_, _, let code) = error else { throw error }
            throw .masterKeyUnreadable(path: path, reason: String(cString: strerror(code)))
        }
        guard mode & S_IFMT == S_IFREG else {
            throw .masterKeyInvalid(path: path, reason: "it is not a regular file")
        }
        try StateDirectory.requirePrivate(path, mode: mode, fix: "chmod 600 \(path)")
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw .masterKeyUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: AESGCMKeySealer.masterKeyLength + 1)
        var total = 0
        while total < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer in
                read(descriptor, buffer.baseAddress.map { $0 + total }, buffer.count - total)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw .masterKeyUnreadable(path: path, reason: String(cString: strerror(errno)))
            }
            if count == 0 { break }
            total += count
        }
        guard total == AESGCMKeySealer.masterKeyLength else {
            throw .masterKeyInvalid(
                path: path,
                reason: total > AESGCMKeySealer.masterKeyLength
                    ? "it is longer than \(AESGCMKeySealer.masterKeyLength) bytes"
                    : "it holds \(total) bytes, a master key is \(AESGCMKeySealer.masterKeyLength)")
        }
        return KeyMaterial(bytes: Array(bytes.prefix(total)))
    }

    /// Creates the master key file (0600) holding `key`. Written to a temporary file, flushed,
    /// then linked into place, so a crash leaves either no key file or a whole one, and a key
    /// file that appeared meanwhile is never overwritten.
    func create(_ key: KeyMaterial) throws(StoreError) {
        let temporary = path + ".new-\(getpid())"
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
        guard link(temporary, path) == 0 else {
            throw .fileSystem(path: path, operation: "create", errno: errno)
        }
        Self.syncDirectory(of: path)
    }

    private static func syncDirectory(of file: String) {
        let parent = file.lastIndex(of: "/").map { String(file[..<$0]) } ?? "."
        let descriptor = open(parent.isEmpty ? "/" : parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}
