import Foundation

/// The role that keeps the cluster's TLS credentials (the CA, the controller's certificate):
/// certificates in the clear, private keys sealed under the master key like channel keys.
///
/// Writes are fenced by the lease like every write once a connection holds it.
public protocol CredentialStore: Sendable {
    /// The credential stored under `name` (`cluster-ca`, `controller:CLUSTER`), or nil.
    func credential(named name: String) async throws -> StoredCredential?

    /// Stores `credential` under `name` unless one is there already, and returns the stored one:
    /// two controllers creating the cluster CA at once end up with the same CA.
    func storeCredentialIfAbsent(
        _ credential: StoredCredential, named name: String, now: Date
    ) async throws
        -> StoredCredential

    /// Stores `credential` under `name`, replacing one that is there (a renewed certificate).
    func replaceCredential(_ credential: StoredCredential, named name: String, now: Date) async throws
}
