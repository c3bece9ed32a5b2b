import Foundation
import MeshwardCore

/// What can go wrong with the state store. Each description says what failed, where, and what
/// to do about it; none ever contains key material.
public enum StoreError: Error, CustomStringConvertible, Sendable {
    /// Another controller holds a live lease.
    case leaseHeld(holder: String, expires: Date)
    /// `holder` tried to renew a lease, or to write under one, that it no longer holds.
    /// `current` is whoever holds it now, if anyone.
    case leaseNotHeld(holder: String, current: Lease?)
    /// A state directory, database or key file is readable or writable by group or others.
    case insecurePermissions(path: String, mode: UInt32, fix: String)
    /// The master key file is missing while the database holds keys sealed under it.
    case masterKeyMissing(path: String)
    /// The master key file the operator named (`--master-key-file`) does not exist. It is never
    /// created: replicas that share one key must not each make their own.
    case masterKeyFileMissing(path: String)
    /// The master key file exists but this user cannot read it.
    case masterKeyUnreadable(path: String, reason: String)
    /// The master key file exists but is not a master key (wrong size, not a regular file).
    case masterKeyInvalid(path: String, reason: String)
    /// The master key does not open the keys in the database: it is not the key they were
    /// sealed under. `path` is the key file, nil for an in-memory store.
    case masterKeyMismatch(path: String?)
    /// A sealed key does not open under its own row's identity while the master key is right:
    /// the row was altered or copied from another channel or generation.
    case sealedKeyInvalid(channel: ChannelID, generation: Int)
    /// The database is damaged or holds a value the store never writes.
    case corrupt(path: String, reason: String)
    /// Every SPI from 0x100 up is issued or foreign on this destination.
    case spiSpaceExhausted(destination: IPAddress)
    /// `update` named a channel the store does not hold.
    case unknownChannel(ChannelID)
    /// A record or request contradicts what the store holds or what a generation may be.
    case invalidRecord(channel: ChannelID, reason: String)
    /// A file-system call failed.
    case fileSystem(path: String, operation: String, errno: Int32)
    /// The database reported an error (SQLite's, or a server's). `path` names the database (a
    /// file, or a `postgres://` URL without its password).
    case database(path: String, operation: String, message: String)
    /// A database server holds no Meshward schema yet; `meshward store migrate` creates it.
    case schemaMissing(database: String)
    /// The database's schema lacks migrations this Meshward needs; `meshward store migrate` applies them.
    case schemaBehind(database: String, missing: [String])
    /// The database's schema has migrations this Meshward does not know: a newer one wrote it.
    case schemaAhead(database: String, unknown: [String])

    public var description: String {
        switch self {
        case .leaseHeld(let holder, let expires):
            return "the state store is leased to '\(holder)' until \(Self.format(expires)); "
                + "only one controller writes at a time: stop it, or wait for its lease to expire"
        case .leaseNotHeld(let holder, let current):
            let now =
                current.map { "it is held by '\($0.holder)' until \(Self.format($0.expiresAt))" }
                ?? "nobody holds it"
            return "'\(holder)' does not hold the state store's lease (\(now)); acquire it again before writing"
        case .insecurePermissions(let path, let mode, let fix):
            return "\(path) has mode \(String(mode, radix: 8)), which lets other users read or change it; "
                + "run '\(fix)' and retry"
        case .masterKeyMissing(let path):
            return "master key \(path) is missing, but the database holds keys sealed under it; restore the file "
                + "from backup (or, to start over, move the state directory aside: every channel will be rekeyed)"
        case .masterKeyFileMissing(let path):
            return "master key file \(path) does not exist; give the path of the cluster's master key (32 bytes, "
                + "mode 0600), or leave out --master-key-file to use master.key in the state directory"
        case .masterKeyUnreadable(let path, let reason):
            return "master key file \(path) cannot be read: \(reason); run meshward as the file's owner, "
                + "or fix its ownership (it must stay mode 0600)"
        case .masterKeyInvalid(let path, let reason):
            return "master key \(path) is unusable: \(reason); restore it from backup"
        case .masterKeyMismatch(let path):
            let which = path.map { "master key \($0)" } ?? "the master key"
            return "\(which) does not open the keys in the state database: it is not the key they were sealed "
                + "under; use the original master key file"
        case .sealedKeyInvalid(let channel, let generation):
            return "the sealed key of channel \(channel) generation \(generation) does not open under its own "
                + "identity: the row was altered or copied; rekey the channel (meshward rekey --channel "
                + "\(channel.from):\(channel.to))"
        case .corrupt(let path, let reason):
            return "state database \(path) is damaged: \(reason); restore it from backup"
        case .spiSpaceExhausted(let destination):
            return "no SPI is left to issue for destination \(destination): every value from 0x100 up is issued or "
                + "foreign there"
        case .unknownChannel(let id):
            return "channel \(id) is not in the state store; issue a generation for it first"
        case .invalidRecord(let channel, let reason):
            return "channel \(channel): \(reason)"
        case .fileSystem(let path, let operation, let errno):
            return "\(operation) \(path) failed: \(String(cString: strerror(errno)))"
        case .database(let path, let operation, let message):
            return "state database \(path): \(operation) failed: \(message)"
        case .schemaMissing(let database):
            return "state database \(database) holds no Meshward schema; create it with "
                + "'meshward store migrate --store \(database)'"
        case .schemaBehind(let database, let missing):
            return "state database \(database) is older than this Meshward: it lacks migrations "
                + "\(missing.joined(separator: ", ")); apply them with 'meshward store migrate --store \(database)'"
        case .schemaAhead(let database, let unknown):
            return "state database \(database) was migrated by a newer Meshward (unknown migrations "
                + "\(unknown.joined(separator: ", "))); upgrade Meshward on this host"
        }
    }

    private static func format(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
