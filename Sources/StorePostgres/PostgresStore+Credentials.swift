import Foundation
import MeshwardCore
import PostgresNIO
import Store

extension PostgresStore: CredentialStore {
    /// The credential stored under `name` (`cluster-ca`, `controller:CLUSTER`), or nil; its key
    /// is opened with the master key, and one that does not open is reported as corrupt.
    public func credential(named name: String) async throws -> StoredCredential? {
        let row = try await transaction("read credential \(name)", .snapshot) { connection in
            try await connection.query(
                "SELECT certificate_pem, nonce, sealed_key FROM credentials WHERE name = \(name)", logger: logger
            ).collect().first?.makeRandomAccess()
        }
        guard let row else { return nil }
        let certificate = try row[0].decode(String.self)
        let opened = Self.unseal(
            try row.bytes(1), try row.bytes(2), SealingContext.credential(name), with: try sealer.makeCipher())
        guard let opened else {
            throw StoreError.corrupt(
                path: url.description,
                reason: "the sealed key of credential '\(name)' does not open under this master key")
        }
        return StoredCredential(certificatePEM: certificate, privateKey: KeyMaterial(bytes: opened))
    }

    /// Stores `credential` under `name` unless one is there already (`ON CONFLICT DO NOTHING`),
    /// and returns the stored one: two controllers creating the cluster CA at once end up with
    /// the same CA.
    public func storeCredentialIfAbsent(
        _ credential: StoredCredential, named name: String, now: Date
    ) async throws -> StoredCredential {
        try await insert(credential, named: name, now: now, onConflict: "DO NOTHING")
        guard let stored = try await self.credential(named: name) else {
            throw StoreError.corrupt(
                path: url.description, reason: "credential '\(name)' vanished right after it was stored")
        }
        return stored
    }

    /// Stores `credential` under `name`, replacing one that is there (a renewed certificate).
    public func replaceCredential(_ credential: StoredCredential, named name: String, now: Date) async throws {
        try await insert(
            credential, named: name, now: now,
            onConflict: """
                DO UPDATE SET certificate_pem = EXCLUDED.certificate_pem, seal_version = EXCLUDED.seal_version,
                    nonce = EXCLUDED.nonce, sealed_key = EXCLUDED.sealed_key, created_at = EXCLUDED.created_at
                """)
    }

    /// One INSERT of a credential, its key sealed under the master key; a fenced write.
    private func insert(
        _ credential: StoredCredential, named name: String, now: Date, onConflict: String
    ) async throws {
        let sealed = try sealer.makeCipher().seal(
            credential.privateKey.bytes, associatedData: SealingContext.credential(name))
        let version = sealer.sealVersion
        try await transaction("store credential \(name)") { connection in
            var binds = PostgresBindings()
            binds.append(name)
            binds.append(credential.certificatePEM)
            binds.append(Int32(version))
            binds.append(ByteBuffer(bytes: sealed.nonce))
            binds.append(ByteBuffer(bytes: sealed.ciphertext))
            binds.append(now.storedValue)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO credentials (name, certificate_pem, seal_version, nonce, sealed_key, created_at)
                        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) \(onConflict)
                        """, binds: binds),
                logger: logger)
        }
    }
}
