/// The nonce and the ciphertext-with-tag of one sealed key: what a store keeps at rest.
public struct SealedKey: Sendable, Hashable {
    public var nonce: [UInt8]
    /// The ciphertext followed by the authentication tag.
    public var ciphertext: [UInt8]

    public init(nonce: [UInt8], ciphertext: [UInt8]) {
        self.nonce = nonce
        self.ciphertext = ciphertext
    }
}
