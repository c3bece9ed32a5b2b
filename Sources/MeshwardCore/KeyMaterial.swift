import COpenSSL

/// Secret key bytes. They never print: `description`, `debugDescription` and string
/// interpolation all give `<redacted>`, and `Codable` is deliberately not offered, so a key
/// cannot reach a log, a plan or a JSON document by accident.
///
/// Only three places read the bytes: the Store (to seal them), the netlink codec (to hand them
/// to the kernel) and the fingerprint.
public struct KeyMaterial: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The raw key bytes. Read only to seal them or to give them to a kernel.
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// `count` bytes from OpenSSL's CSPRNG.
    public static func random(count: Int) throws -> KeyMaterial {
        KeyMaterial(bytes: try SecureRandom.bytes(count: count))
    }

    public var count: Int { bytes.count }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: ["bytes": "<redacted>"]) }

    /// A one-way fingerprint: the first 8 bytes of SHA-256 over the key, as 16 hex digits.
    /// Enough to tell two keys apart (the simulated kernel models a key mismatch with it),
    /// never enough to recover a key.
    public var fingerprint: String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = bytes.withUnsafeBufferPointer { input in
            EVP_Digest(input.baseAddress, input.count, &digest, &length, fetchedSHA256 ?? EVP_sha256(), nil)
        }
        return HexDigits.string(digest.prefix(8))
    }
}

/// SHA-256 as fetched from OpenSSL's default provider once: with `EVP_sha256()` every digest
/// looks the algorithm up again, under a lock all threads share (a plan fingerprints millions
/// of keys). Never freed; nil only when the fetch failed, and then `EVP_sha256()` is used.
nonisolated(unsafe) private let fetchedSHA256: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil)

/// OpenSSL's CSPRNG.
public enum SecureRandom {
    /// `count` random bytes from `RAND_bytes`; throws when OpenSSL cannot seed itself.
    public static func bytes(count: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return output }
        let status = output.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        guard status == 1 else { throw SecureRandomError.unavailable }
        return output
    }

    /// A uniformly random 32-bit value.
    public static func uint32() throws -> UInt32 {
        try bytes(count: 4).reduce(0) { ($0 << 8) | UInt32($1) }
    }
}

/// OpenSSL could not produce random bytes.
public enum SecureRandomError: Error, CustomStringConvertible {
    case unavailable
    public var description: String {
        "OpenSSL's random generator failed (RAND_bytes); check that the system has an entropy source"
    }
}
