/// Sealing failed for a reason other than a key that does not open.
public enum SealingError: Error, CustomStringConvertible, Sendable {
    case wrongMasterKeyLength(Int)
    case openSSL(String)

    public var description: String {
        switch self {
        case .wrongMasterKeyLength(let count):
            "a master key is \(AESGCMKeySealer.masterKeyLength) bytes, this one is \(count)"
        case .openSSL(let call):
            "OpenSSL's \(call) failed: \(AESGCMCipher.lastOpenSSLError())"
        }
    }
}
