import COpenSSL
import MeshwardCore

/// One OpenSSL AES-256-GCM context keyed with the master key. Not thread-safe: one per batch.
final class AESGCMCipher: KeySealingCipher {
    private let encryptor: OpaquePointer
    private let decryptor: OpaquePointer

    init(masterKey: KeyMaterial) throws(SealingError) {
        guard let encryptor = EVP_CIPHER_CTX_new() else { throw .openSSL("EVP_CIPHER_CTX_new") }
        guard let decryptor = EVP_CIPHER_CTX_new() else {
            EVP_CIPHER_CTX_free(encryptor)
            throw .openSSL("EVP_CIPHER_CTX_new")
        }
        self.encryptor = encryptor
        self.decryptor = decryptor
        let keyed = masterKey.bytes.withUnsafeBufferPointer { key in
            EVP_EncryptInit_ex(encryptor, EVP_aes_256_gcm(), nil, key.baseAddress, nil) == 1
                && EVP_DecryptInit_ex(decryptor, EVP_aes_256_gcm(), nil, key.baseAddress, nil) == 1
        }
        guard keyed else { throw .openSSL("EVP_CipherInit_ex(aes-256-gcm)") }
    }

    deinit {
        EVP_CIPHER_CTX_free(encryptor)
        EVP_CIPHER_CTX_free(decryptor)
    }

    /// Seals `plaintext` under a fresh random nonce, authenticating `associatedData` with it.
    func seal(_ plaintext: [UInt8], associatedData: [UInt8]) throws -> SealedKey {
        let nonce = try SecureRandom.bytes(count: AESGCMKeySealer.nonceLength)
        var output = [UInt8](repeating: 0, count: plaintext.count + AESGCMKeySealer.tagLength)
        var length: Int32 = 0
        let ok = nonce.withUnsafeBufferPointer { nonce in
            associatedData.withUnsafeBufferPointer { ad in
                plaintext.withUnsafeBufferPointer { input in
                    output.withUnsafeMutableBufferPointer { out in
                        guard let output = out.baseAddress else { return false }
                        return EVP_EncryptInit_ex(encryptor, nil, nil, nil, nonce.baseAddress) == 1
                            && EVP_EncryptUpdate(encryptor, nil, &length, ad.baseAddress, Int32(ad.count)) == 1
                            && EVP_EncryptUpdate(
                                encryptor, output, &length, input.baseAddress, Int32(input.count)) == 1
                            && EVP_EncryptFinal_ex(encryptor, output + Int(length), &length) == 1
                            && EVP_CIPHER_CTX_ctrl(
                                encryptor, EVP_CTRL_GCM_GET_TAG, Int32(AESGCMKeySealer.tagLength),
                                output + plaintext.count) == 1
                    }
                }
            }
        }
        guard ok else { throw SealingError.openSSL("AES-256-GCM seal") }
        return SealedKey(nonce: nonce, ciphertext: output)
    }

    /// Opens a sealed key; nil when it does not authenticate (wrong master key, wrong associated
    /// data, altered bytes) or is empty. Never returns unauthenticated bytes.
    func open(
        nonce: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer
    ) -> [UInt8]? {
        guard nonce.count == AESGCMKeySealer.nonceLength, ciphertext.count > AESGCMKeySealer.tagLength else {
            return nil
        }
        let plaintextCount = ciphertext.count - AESGCMKeySealer.tagLength
        var tag = [UInt8](ciphertext[plaintextCount...])
        var length: Int32 = 0
        var authenticated = false
        var plaintext = [UInt8](repeating: 0, count: plaintextCount)
        plaintext.withUnsafeMutableBufferPointer { out in
            let input = ciphertext.bindMemory(to: UInt8.self)
            guard let output = out.baseAddress else { return }
            authenticated =
                EVP_DecryptInit_ex(decryptor, nil, nil, nil, nonce.bindMemory(to: UInt8.self).baseAddress) == 1
                && EVP_DecryptUpdate(
                    decryptor, nil, &length, associatedData.bindMemory(to: UInt8.self).baseAddress,
                    Int32(associatedData.count)) == 1
                && EVP_DecryptUpdate(decryptor, output, &length, input.baseAddress, Int32(plaintextCount)) == 1
                && EVP_CIPHER_CTX_ctrl(decryptor, EVP_CTRL_GCM_SET_TAG, Int32(AESGCMKeySealer.tagLength), &tag) == 1
                && EVP_DecryptFinal_ex(decryptor, output + Int(length), &length) == 1
        }
        guard authenticated else {
            for index in plaintext.indices { plaintext[index] = 0 }
            return nil
        }
        return plaintext
    }

    /// The newest error on OpenSSL's error queue, as text.
    static func lastOpenSSLError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "no detail from OpenSSL" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
