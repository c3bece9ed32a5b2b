import MeshwardCore

/// One `XFRMA_ALG_*` attribute of an SA: the kernel's algorithm name, the key, and the ICV or
/// truncation length where the attribute has one.
struct XfrmAlgorithm: Hashable, CustomStringConvertible {
    /// Which attribute carries it.
    enum Kind: Hashable {
        /// `XFRMA_ALG_AEAD` (`struct xfrm_algo_aead`, ICV length in bits).
        case aead
        /// `XFRMA_ALG_CRYPT` (`struct xfrm_algo`).
        case crypt
        /// `XFRMA_ALG_AUTH_TRUNC` (`struct xfrm_algo_auth`, truncation length in bits).
        case authTruncated
        /// `XFRMA_ALG_AUTH` (`struct xfrm_algo`): the kernel reports it next to AUTH_TRUNC.
        case auth

        var attribute: UInt16 {
            switch self {
            case .aead: XfrmCodec.attributeAEAD
            case .crypt: XfrmCodec.attributeCrypt
            case .authTruncated: XfrmCodec.attributeAuthTrunc
            case .auth: XfrmCodec.attributeAuth
            }
        }

        /// The offset of `alg_key` in the structure.
        var keyOffset: Int { self == .aead || self == .authTruncated ? 72 : 68 }
    }

    var kind: Kind
    var name: String
    var key: [UInt8]
    /// ICV (AEAD) or truncation (AUTH_TRUNC) length in bits; 0 for the others.
    var lengthBits: UInt32

    var description: String { "\(name) key <redacted> \(lengthBits)" }

    /// The attributes that carry `cipher` with `key` (encryption key first, then integrity key).
    static func algorithms(for cipher: Cipher, key: [UInt8]) throws -> [XfrmAlgorithm] {
        guard key.count == cipher.keyLength else {
            throw XfrmEncodingError("the key of a \(cipher) SA must be \(cipher.keyLength) bytes, not \(key.count)")
        }
        let encryptionKey = Array(key.prefix(cipher.encryptionKeyLength))
        if cipher.isAEAD {
            return [
                XfrmAlgorithm(
                    kind: .aead, name: cipher.kernelEncryptionName, key: encryptionKey,
                    lengthBits: UInt32(cipher.icvBits))
            ]
        }
        return [
            XfrmAlgorithm(kind: .crypt, name: cipher.kernelEncryptionName, key: encryptionKey, lengthBits: 0),
            XfrmAlgorithm(
                kind: .authTruncated, name: cipher.kernelIntegrityName ?? "",
                key: Array(key.dropFirst(cipher.encryptionKeyLength)),
                lengthBits: UInt32(cipher.icvBits)),
        ]
    }

    /// The cipher and key these attributes describe; nil when they are not exactly one of
    /// Meshward's ciphers with its key length and 128-bit ICV.
    static func cipher(of algorithms: [XfrmAlgorithm]) -> (Cipher, [UInt8])? {
        let aead = algorithms.first { $0.kind == .aead }
        let crypt = algorithms.first { $0.kind == .crypt }
        let auth = algorithms.first { $0.kind == .authTruncated }
        if let aead {
            guard crypt == nil, auth == nil else { return nil }
            let match = Cipher.allCases.first {
                $0.isAEAD && $0.kernelEncryptionName == aead.name && $0.encryptionKeyLength == aead.key.count
                    && UInt32($0.icvBits) == aead.lengthBits
            }
            return match.map { ($0, aead.key) }
        }
        guard let crypt, let auth else { return nil }
        let match = Cipher.allCases.first {
            !$0.isAEAD && $0.kernelEncryptionName == crypt.name && $0.encryptionKeyLength == crypt.key.count
                && $0.kernelIntegrityName == auth.name && $0.integrityKeyLength == auth.key.count
                && UInt32($0.icvBits) == auth.lengthBits
        }
        return match.map { ($0, crypt.key + auth.key) }
    }
}

extension XfrmCodec {
    /// Appends an algorithm attribute: name (64 bytes, NUL-padded), key length in bits, the
    /// ICV or truncation length where the structure has one, then the key.
    static func appendAlgorithm(_ algorithm: XfrmAlgorithm, into buffer: inout NetlinkBuffer) {
        buffer.appendAttribute(type: algorithm.kind.attribute) { body in
            let start = body.appendZeros(algorithm.kind.keyOffset + algorithm.key.count)
            body.setBytes(algorithm.name.utf8.prefix(algorithmNameSize - 1), at: start)
            body.setUInt32(UInt32(algorithm.key.count * 8), at: start + 64)
            if algorithm.kind.keyOffset == 72 { body.setUInt32(algorithm.lengthBits, at: start + 68) }
            body.setBytes(algorithm.key, at: start + algorithm.kind.keyOffset)
        }
    }

    /// Reads an algorithm attribute of `kind`. Throws when the structure or its key is truncated.
    static func algorithm(_ reader: NetlinkReader, kind: XfrmAlgorithm.Kind) throws -> XfrmAlgorithm {
        let name = try reader.fixedString(0, algorithmNameSize, "alg_name")
        let keyBits = try reader.uint32(64, "alg_key_len")
        let lengthBits = kind.keyOffset == 72 ? try reader.uint32(68, "alg_icv_len") : 0
        let keyLength = Int((keyBits + 7) / 8)
        let key = try reader.byteArray(kind.keyOffset, keyLength, "alg_key")
        return XfrmAlgorithm(kind: kind, name: name, key: key, lengthBits: lengthBits)
    }
}
