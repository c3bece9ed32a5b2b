import Foundation
import Identity
import MeshwardCore

#if canImport(Glibc)
import Glibc
#endif

/// The agent's small state directory (default `/var/lib/meshward-agent`): its key and
/// certificate, the cluster CA certificate, the highest controller epoch it has accepted, and
/// the boot the controller marked ready, and the boot guard list (`boot-guard.json`: selectors,
/// never keys or SPIs). Never a channel key: the kernel holds those.
///
/// The directory is 0700 and every file 0600; looser modes are refused, as the state directory's are.
public struct AgentDirectory: Sendable {
    public let path: String

    public static let defaultPath = "/var/lib/meshward-agent"

    public init(path: String) { self.path = path }

    public var caCertificatePath: String { path + "/ca.pem" }
    public var certificatePath: String { path + "/agent.pem" }
    public var privateKeyPath: String { path + "/agent.key" }
    public var epochPath: String { path + "/epoch" }
    public var readyPath: String { path + "/ready" }
    public var bootGuardPath: String { path + "/boot-guard.json" }
    /// A renewal's new certificate and key, written and synced before either is renamed into place.
    var renewedCertificatePath: String { certificatePath + ".new" }
    var renewedKeyPath: String { privateKeyPath + ".new" }

    /// Creates the directory 0700 when missing; refuses one that others can read or write.
    public func prepare() throws(AgentError) {
        do {
            try PrivatePath.prepareDirectory(path, use: "use as the agent directory")
        } catch {
            throw Self.agentError(error, path: path)
        }
    }

    /// Reads the agent's credentials; every file must exist and be 0600.
    ///
    /// A renewal interrupted between its two renames left the new certificate beside the old
    /// key, and the new key as `agent.key.new`: that rename is finished here first.
    public func readCredentials() throws(AgentError) -> AgentCredentials {
        try finishInterruptedRenewal()
        return AgentCredentials(
            caCertificatePEM: try read(caCertificatePath, what: "the cluster CA certificate"),
            certificatePEM: try read(certificatePath, what: "the agent certificate"),
            privateKeyPEM: try read(privateKeyPath, what: "the agent key"))
    }

    /// Replaces the agent's key and certificate together (a renewal). Both new files are written
    /// and synced first; then the certificate is renamed into place, then the key, and the
    /// directory is synced. A failure before the first rename leaves the old pair as it was; a
    /// crash between the renames is finished by the next `readCredentials()`.
    public func replaceKeyAndCertificate(certificatePEM: String, privateKeyPEM: String) throws(AgentError) {
        try writeSynced(privateKeyPEM, to: renewedKeyPath)
        do {
            try writeSynced(certificatePEM, to: renewedCertificatePath)
        } catch {
            unlink(renewedKeyPath)
            throw error
        }
        guard rename(renewedCertificatePath, certificatePath) == 0 else {
            let error = errno
            unlink(renewedCertificatePath)
            unlink(renewedKeyPath)
            throw .fileSystem(path: certificatePath, operation: "rename", errno: error)
        }
        guard rename(renewedKeyPath, privateKeyPath) == 0 else {
            throw .fileSystem(path: privateKeyPath, operation: "rename", errno: errno)
        }
        syncDirectory()
    }

    /// Finishes a renewal stopped between its renames: when `agent.key.new` exists and is the
    /// key of `agent.pem` while `agent.key` is not, it is renamed into place. Any other leftover
    /// of a renewal (one that stopped before its first rename) is removed.
    func finishInterruptedRenewal() throws(AgentError) {
        guard try Self.modeIfExists(of: renewedKeyPath) != nil else {
            if try Self.modeIfExists(of: renewedCertificatePath) != nil { unlink(renewedCertificatePath) }
            return
        }
        let certificate = try read(certificatePath, what: "the agent certificate")
        let pending = try read(renewedKeyPath, what: "the renewed agent key")
        let current = try? read(privateKeyPath, what: "the agent key")
        let pendingMatches = (try? IssuedCredential(certificatePEM: certificate, privateKeyPEM: pending))?.keyMatches
        let currentMatches = current.flatMap {
            (try? IssuedCredential(certificatePEM: certificate, privateKeyPEM: $0))?.keyMatches
        }
        if pendingMatches == true && currentMatches != true {
            guard rename(renewedKeyPath, privateKeyPath) == 0 else {
                throw .fileSystem(path: privateKeyPath, operation: "rename", errno: errno)
            }
            syncDirectory()
        } else {
            unlink(renewedKeyPath)
            if try Self.modeIfExists(of: renewedCertificatePath) != nil { unlink(renewedCertificatePath) }
        }
    }

    /// Syncs the directory, so that renames in it survive a power loss.
    private func syncDirectory() {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    /// Writes the credentials, each file 0600, replacing what was there.
    public func writeCredentials(_ credentials: AgentCredentials) throws(AgentError) {
        try write(credentials.caCertificatePEM, to: caCertificatePath)
        try write(credentials.certificatePEM, to: certificatePath)
        try write(credentials.privateKeyPEM, to: privateKeyPath)
    }

    /// Whether the directory holds an agent certificate (the host is enrolled, or was given
    /// credentials): a join token is then not used.
    public var hasCredentials: Bool {
        get throws(AgentError) { try Self.modeIfExists(of: certificatePath) != nil }
    }

    /// Reads the join token in `file` (0600, like every secret of the agent's). The error names
    /// the file and what is wrong, never the secret.
    public static func readJoinToken(at file: String) throws(AgentError) -> JoinToken {
        guard let mode = try modeIfExists(of: file) else {
            throw .joinToken(path: file, reason: "it does not exist")
        }
        try requirePrivate(file, mode: mode, fix: "chmod 600 \(file)")
        guard let data = FileManager.default.contents(atPath: file) else {
            throw .fileSystem(path: file, operation: "read", errno: errno)
        }
        do {
            return try JoinToken(parsing: String(decoding: data, as: UTF8.self))
        } catch {
            throw .joinToken(path: file, reason: "\(error)")
        }
    }

    /// The highest epoch this agent accepted; 0 before the first apply.
    public func readHighestEpoch() throws(AgentError) -> UInt64 {
        guard try Self.modeIfExists(of: epochPath) != nil else { return 0 }
        let text = try read(epochPath, what: "the highest epoch").trimmingCharacters(in: .whitespacesAndNewlines)
        guard let epoch = UInt64(text) else {
            throw .credentials(path: epochPath, reason: "holds '\(text)', not an epoch number")
        }
        return epoch
    }

    /// Records `epoch` durably (written, synced, renamed into place) before it is relied on.
    public func writeHighestEpoch(_ epoch: UInt64) throws(AgentError) {
        try write("\(epoch)\n", to: epochPath)
    }

    /// The boot ID the controller last marked ready, if any.
    public func readReadyBoot() throws(AgentError) -> String? {
        guard try Self.modeIfExists(of: readyPath) != nil else { return nil }
        return try read(readyPath, what: "the ready mark").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func writeReadyBoot(_ bootID: String) throws(AgentError) {
        try write(bootID + "\n", to: readyPath)
    }

    /// The boot guard list; empty when the file does not exist (nothing was ever protected here).
    public func readBootGuard() throws(AgentError) -> [BootGuardEntry] {
        guard try Self.modeIfExists(of: bootGuardPath) != nil else { return [] }
        return try BootGuard.decode(read(bootGuardPath, what: "the boot guard list"), path: bootGuardPath)
    }

    /// Writes the boot guard list (0600, synced, renamed into place).
    public func writeBootGuard(_ entries: [BootGuardEntry]) throws(AgentError) {
        try write(BootGuard.encode(entries), to: bootGuardPath)
    }

    func read(_ file: String, what: String) throws(AgentError) -> String {
        guard let mode = try Self.modeIfExists(of: file) else {
            throw .credentials(path: file, reason: "\(what) is missing")
        }
        try Self.requirePrivate(file, mode: mode, fix: "chmod 600 \(file)")
        guard let data = FileManager.default.contents(atPath: file) else {
            throw .fileSystem(path: file, operation: "read", errno: errno)
        }
        return String(decoding: data, as: UTF8.self)
    }

    func write(_ text: String, to file: String) throws(AgentError) {
        let temporary = file + ".tmp"
        try writeSynced(text, to: temporary)
        guard rename(temporary, file) == 0 else { throw .fileSystem(path: file, operation: "rename", errno: errno) }
    }

    /// Writes `text` to `temporary` (created afresh, 0600) and syncs it.
    func writeSynced(_ text: String, to temporary: String) throws(AgentError) {
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .fileSystem(path: temporary, operation: "create", errno: errno) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        let error = errno
        guard written == bytes.count, fsync(descriptor) == 0 else {
            close(descriptor)
            unlink(temporary)
            throw .fileSystem(path: temporary, operation: "write", errno: error)
        }
        close(descriptor)
    }

    static func modeIfExists(of path: String) throws(AgentError) -> mode_t? {
        do {
            return try PrivatePath.modeIfExists(of: path)
        } catch {
            throw agentError(error, path: path)
        }
    }

    static func requirePrivate(_ path: String, mode: mode_t, fix: String) throws(AgentError) {
        do {
            try PrivatePath.requirePrivate(mode: mode, fix: fix)
        } catch {
            throw agentError(error, path: path)
        }
    }

    /// The agent's error for a `PrivatePath` problem with `path`.
    static func agentError(_ problem: PrivatePath.Problem, path: String) -> AgentError {
        switch problem {
        case .fileSystem(let operation, let errno): .fileSystem(path: path, operation: operation, errno: errno)
        case .insecurePermissions(let mode, let fix): .insecurePermissions(path: path, mode: mode, fix: fix)
        }
    }
}

/// A party's TLS credentials: the cluster CA certificate (the only trust root), its own
/// certificate and its private key, all PEM.
public struct AgentCredentials: Sendable {
    public var caCertificatePEM: String
    public var certificatePEM: String
    public var privateKeyPEM: String

    public init(caCertificatePEM: String, certificatePEM: String, privateKeyPEM: String) {
        self.caCertificatePEM = caCertificatePEM
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
    }

    /// Credentials for `issued`, signed by `ca`.
    public init(ca: ClusterCA, issued: IssuedCredential) throws {
        self.caCertificatePEM = try ca.certificatePEM
        self.certificatePEM = try issued.certificatePEM
        self.privateKeyPEM = issued.privateKeyPEM
    }
}
