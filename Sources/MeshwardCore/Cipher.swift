/// The ciphers a spec may name, with what the kernel needs to know of each.
///
/// The raw value is the spec's spelling. Key lengths include the 4-byte salt of the
/// RFC 4106/7634 AEAD constructions, so `keyLength` bytes are exactly what one generation's
/// `KeyMaterial` holds.
public enum Cipher: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    case aesGCM128 = "aes-gcm-128"
    case aesGCM256 = "aes-gcm-256"
    case chacha20Poly1305 = "chacha20-poly1305"
    case aesCBCHMACSHA256 = "aes-cbc-hmac-sha256"

    public var description: String { rawValue }

    /// True for the AEAD ciphers, carried in `XFRMA_ALG_AEAD`.
    public var isAEAD: Bool { self != .aesCBCHMACSHA256 }

    /// The kernel's crypto API name of the encryption (or AEAD) algorithm.
    public var kernelEncryptionName: String {
        switch self {
        case .aesGCM128, .aesGCM256: "rfc4106(gcm(aes))"
        case .chacha20Poly1305: "rfc7539esp(chacha20,poly1305)"
        case .aesCBCHMACSHA256: "cbc(aes)"
        }
    }

    /// The kernel's name of the integrity algorithm, for the non-AEAD cipher only.
    public var kernelIntegrityName: String? {
        self == .aesCBCHMACSHA256 ? "hmac(sha256)" : nil
    }

    /// The length in bytes of the encryption key (AEAD: key plus 4-byte salt).
    public var encryptionKeyLength: Int {
        switch self {
        case .aesGCM128: 16 + 4
        case .aesGCM256: 32 + 4
        case .chacha20Poly1305: 32 + 4
        case .aesCBCHMACSHA256: 32
        }
    }

    /// The length in bytes of the integrity key; 0 for AEAD ciphers.
    public var integrityKeyLength: Int { self == .aesCBCHMACSHA256 ? 32 : 0 }

    /// The total key material of one generation: encryption key, then integrity key.
    public var keyLength: Int { encryptionKeyLength + integrityKeyLength }

    /// The ICV (or truncated HMAC) length in bits: 128 for every cipher we offer.
    public var icvBits: Int { 128 }
}
