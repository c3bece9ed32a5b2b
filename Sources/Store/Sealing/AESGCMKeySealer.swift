import MeshwardCore

/// Seals and opens generation keys with AES-256-GCM under a 32-byte master key.
///
/// Each seal draws a fresh 12-byte nonce from OpenSSL's CSPRNG. A value holds only the master
/// key; OpenSSL contexts are made per batch (`makeCipher`), never shared between threads. The
/// master key comes from a file (`MasterKeyFile`: the state directory's `master.key`, created on
/// first use, or the operator's `--master-key-file`) or, in memory, from the caller.
public struct AESGCMKeySealer: KeySealer {
    /// The master key's length in bytes (AES-256).
    public static let masterKeyLength = 32
    static let nonceLength = 12
    static let tagLength = 16
    /// The version written beside keys sealed by this sealer.
    static let version = 1

    let masterKey: KeyMaterial

    /// Throws `SealingError.wrongMasterKeyLength` unless `masterKey` is exactly 32 bytes.
    public init(masterKey: KeyMaterial) throws(SealingError) {
        guard masterKey.count == Self.masterKeyLength else {
            throw .wrongMasterKeyLength(masterKey.count)
        }
        self.masterKey = masterKey
    }

    public var sealVersion: Int { Self.version }

    public func makeCipher() throws -> any KeySealingCipher {
        try AESGCMCipher(masterKey: masterKey)
    }
}
