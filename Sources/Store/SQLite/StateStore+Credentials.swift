import Foundation
import GRDB
import MeshwardCore

extension StateStore: CredentialStore {
    /// The credential stored under `name` (`cluster-ca`, `controller`), or nil.
    public func credential(named name: String) throws -> StoredCredential? {
        let row = try read("read credential \(name)") { db in
            try Row.fetchOne(
                db, sql: "SELECT certificate_pem, nonce, sealed_key FROM credentials WHERE name = ?", arguments: [name])
        }
        guard let row else { return nil }
        let certificate: String = row[0]
        let nonce: Data = row[1]
        let sealed: Data = row[2]
        let cipher = try sealer.makeCipher()
        let associatedData = SealingContext.credential(name)
        let opened = nonce.withUnsafeBytes { nonce in
            sealed.withUnsafeBytes { sealed in
                associatedData.withUnsafeBytes { ad in cipher.open(nonce: nonce, ciphertext: sealed, associatedData: ad)
                }
            }
        }
        guard let opened else {
            throw StoreError.corrupt(
                path: databasePath, reason: "the sealed key of credential '\(name)' does not open under this master key"
            )
        }
        return StoredCredential(certificatePEM: certificate, privateKey: KeyMaterial(bytes: opened))
    }

    /// Stores `credential` under `name` unless one is there already, and returns the stored one:
    /// two controllers creating the cluster CA at once end up with the same CA.
    public func storeCredentialIfAbsent(
        _ credential: StoredCredential, named name: String, now: Date
    ) throws
        -> StoredCredential
    {
        try insert(credential, named: name, now: now, conflict: "IGNORE")
        guard let stored = try self.credential(named: name) else {
            throw StoreError.corrupt(
                path: databasePath, reason: "credential '\(name)' vanished right after it was stored")
        }
        return stored
    }

    /// Stores `credential` under `name`, replacing one that is there (a renewed certificate).
    public func replaceCredential(_ credential: StoredCredential, named name: String, now: Date) throws {
        try insert(credential, named: name, now: now, conflict: "REPLACE")
    }

    /// `INSERT OR <conflict>` of a credential, its key sealed under the master key.
    private func insert(_ credential: StoredCredential, named name: String, now: Date, conflict: String) throws {
        let sealed = try sealer.makeCipher().seal(
            credential.privateKey.bytes, associatedData: SealingContext.credential(name))
        try writeUnfenced("store credential \(name)") { db in
            try db.execute(
                sql: """
                    INSERT OR \(conflict) INTO credentials
                        (name, certificate_pem, seal_version, nonce, sealed_key, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    name, credential.certificatePEM, sealer.sealVersion, Data(sealed.nonce), Data(sealed.ciphertext),
                    now.storedValue,
                ])
        }
    }
}
