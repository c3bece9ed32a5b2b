import NIOCore
import NIOSSL

/// The TLS policy of every connection that carries Meshward's control traffic: the agent's
/// listener, a joining agent's enrollment listener, and the controller's connections to both
/// (observe, apply, ready marks and certificate renewal travel on the agent connection).
///
/// Both ends speak **TLS 1.3 only** and agree on **`X25519MLKEM768` only** as the key exchange
/// (the hybrid of X25519 and ML-KEM-768, IANA group 0x11EC). The ESP keys of the whole fleet
/// travel inside these connections: a recording made today must stay unreadable even if X25519
/// falls to a quantum computer later, so a classical-only key exchange is never accepted, and
/// TLS 1.2 (with its CBC suites and no downgrade protection of the group) is never offered. A
/// peer that offers anything else fails the handshake; the side that refused says which version
/// and key exchange are required (`requirement`).
///
/// This is the one place that says so: every `TLSConfiguration` of the control channel comes
/// from `configuration(role:)`.
public enum ControlChannelTLS {
    /// The only TLS version spoken.
    public static let version: TLSVersion = .tlsv13
    /// The only key exchange group agreed on.
    public static let keyExchange: NIOTLSCurve = .x25519_MLKEM768
    /// The application protocols a gRPC connection announces (ALPN).
    static let applicationProtocols = ["grpc-exp", "h2"]

    /// What the policy requires, in the words of every refusal.
    public static let requirement =
        "Meshward's control channel requires TLS 1.3 with the X25519MLKEM768 key exchange"

    /// The callback that decides the peer's certificate chain in place of NIOSSL's own
    /// verification (`PeerCheck`, `ControllerPin`, an enrolling controller's check).
    public typealias Verification =
        @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void

    /// Which end of a connection a configuration is for.
    public enum Role: Sendable {
        case server
        case client
    }

    /// A `TLSConfiguration` for `role` under this policy, presenting `certificateChain` (PEM,
    /// leaf first) with `privateKeyPEM` and trusting only `trustRootsPEM` (never the system
    /// store). The peer's chain is decided by the caller's verification callback; host names are
    /// never checked (identities are SPIFFE URIs, and peers are dialled by address).
    public static func configuration(
        role: Role, certificateChain: [String], privateKeyPEM: String, trustRootsPEM: [String]
    ) throws -> TLSConfiguration {
        let chain = try certificateChain.map { NIOSSLCertificateSource.certificate(try certificate($0)) }
        let key = NIOSSLPrivateKeySource.privateKey(
            try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem))
        var configuration: TLSConfiguration
        switch role {
        case .server:
            configuration = .makeServerConfiguration(certificateChain: chain, privateKey: key)
        case .client:
            configuration = .makeClientConfiguration()
            configuration.certificateChain = chain
            configuration.privateKey = key
        }
        configuration.minimumTLSVersion = version
        configuration.maximumTLSVersion = version
        configuration.curves = [keyExchange]
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates(try trustRootsPEM.map(certificate))
        configuration.applicationProtocols = applicationProtocols
        return configuration
    }

    private static func certificate(_ pem: String) throws -> NIOSSLCertificate {
        try NIOSSLCertificate(bytes: Array(pem.utf8), format: .pem)
    }

    /// The name of a TLS version as `status` prints it (`TLSv1.3`), from its wire code.
    public static func versionName(_ code: UInt16) -> String {
        switch code {
        case 0x0304: return "TLSv1.3"
        case 0x0303: return "TLSv1.2"
        case 0x0302: return "TLSv1.1"
        case 0x0301: return "TLSv1.0"
        case 0x0300: return "SSLv3"
        default: return "0x" + String(code, radix: 16, uppercase: true).leftPadded(to: 4)
        }
    }

    /// The name of a key exchange group as IANA's registry spells it, from its code point.
    public static func groupName(_ code: UInt16) -> String {
        switch code {
        case 0x11EC: return "X25519MLKEM768"
        case 0x11EB: return "SecP256r1MLKEM768"
        case 0x11ED: return "SecP384r1MLKEM1024"
        case 0x0200: return "MLKEM512"
        case 0x0201: return "MLKEM768"
        case 0x0202: return "MLKEM1024"
        case 0x001D: return "X25519"
        case 0x001E: return "X448"
        case 0x0017: return "secp256r1"
        case 0x0018: return "secp384r1"
        case 0x0019: return "secp521r1"
        default: return "0x" + String(code, radix: 16, uppercase: true).leftPadded(to: 4)
        }
    }

    /// Why this policy refuses a client that offered `offer`; nil when the offer can meet it.
    /// A refused client fails the handshake whatever this says; the reason is what the refusing
    /// side logs and counts.
    public static func refusal(of offer: TLSClientOffer) -> ControlChannelRefusal? {
        guard offer.versions.contains(0x0304) else { return .version(offered: offer.versions) }
        guard offer.groups.contains(keyExchange.rawValue) else { return .keyExchange(offered: offer.groups) }
        return nil
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
