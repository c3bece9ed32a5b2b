/// One batch's sealing context, made by `KeySealer.makeCipher()`. Not thread-safe.
public protocol KeySealingCipher {
    /// Seals `plaintext` under a fresh random nonce, authenticating `associatedData` with it.
    func seal(_ plaintext: [UInt8], associatedData: [UInt8]) throws -> SealedKey

    /// Opens a sealed key; nil when it does not authenticate (wrong master key, wrong associated
    /// data, altered bytes). Never returns unauthenticated bytes.
    func open(
        nonce: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer
    ) -> [UInt8]?
}
