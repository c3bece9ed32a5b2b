import Crypto
import Foundation

/// The proof a joining agent gives that it holds a join token, bound to one TLS session.
///
/// swift-nio-ssl exposes no RFC 5705 keying-material exporter, so the binding is RFC 5929
/// tls-server-end-point style plus a fresh controller nonce:
///
///     proof = HMAC-SHA256(key: verifier,
///                         "meshward-join-v1" ‖ nonce ‖ SHA-256(agent certificate DER)
///                         ‖ SHA-256(controller certificate DER) ‖ SHA-256(CSR DER))
///
/// where `verifier` is SHA-256 of the token's secret (what the Store keeps), the nonce is the
/// controller's 32 fresh bytes for this session, and the two certificates are the ones each side
/// saw in this TLS session. A proof recorded in one session does not verify in another: its nonce
/// and at least one certificate differ.
public enum EnrollmentProof {
    /// The label the proof's message starts with.
    public static let label = Array("meshward-join-v1".utf8)
    /// The size of the controller's nonce.
    public static let nonceCount = 32

    /// The proof over one session's values.
    public static func make(
        verifier: [UInt8], nonce: [UInt8], agentCertificateDER: [UInt8], controllerCertificateDER: [UInt8],
        csrDER: [UInt8]
    ) -> [UInt8] {
        let message = Self.message(
            nonce: nonce, agentCertificateDER: agentCertificateDER,
            controllerCertificateDER: controllerCertificateDER, csrDER: csrDER)
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: verifier)))
    }

    /// Whether `proof` is the proof over these values (compared in constant time).
    public static func verify(
        _ proof: [UInt8], verifier: [UInt8], nonce: [UInt8], agentCertificateDER: [UInt8],
        controllerCertificateDER: [UInt8], csrDER: [UInt8]
    ) -> Bool {
        guard nonce.count == nonceCount else { return false }
        let message = Self.message(
            nonce: nonce, agentCertificateDER: agentCertificateDER,
            controllerCertificateDER: controllerCertificateDER, csrDER: csrDER)
        return HMAC<SHA256>.isValidAuthenticationCode(
            proof, authenticating: message, using: SymmetricKey(data: verifier))
    }

    /// A fresh nonce from the system's CSPRNG.
    public static func nonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<nonceCount).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    static func message(
        nonce: [UInt8], agentCertificateDER: [UInt8], controllerCertificateDER: [UInt8], csrDER: [UInt8]
    ) -> [UInt8] {
        label + nonce + Array(SHA256.hash(data: agentCertificateDER))
            + Array(SHA256.hash(data: controllerCertificateDER)) + Array(SHA256.hash(data: csrDER))
    }
}
