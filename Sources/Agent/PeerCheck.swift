import Foundation
import Identity
import NIOCore
import NIOSSL
import Synchronization

/// The TLS verification of one side of an agent connection: the peer's certificate must be
/// issued by the cluster CA (the only trust root, never the system store), be inside its
/// validity window, and name the expected identity. The last refusal is kept so that the
/// caller's error can say why a handshake failed.
final class PeerCheck: Sendable {
    /// The verifier, whose revocation list a long-lived connection's owner brings up to date
    /// (`update(revocations:)`) for the handshakes still to come.
    private let verifierState: Mutex<PeerVerifier>
    let peer: String
    let expected: @Sendable (SPIFFEIdentity) -> String?
    let now: @Sendable () -> Date
    let onRefusal: @Sendable (IdentityError) -> Void
    private let lastRefusal = Mutex<IdentityError?>(nil)
    private let lastAccepted = Mutex<ClosedRange<Date>?>(nil)
    private let lastAcceptedSerial = Mutex<String?>(nil)
    private let lastProvisional = Mutex<[UInt8]?>(nil)

    init(
        verifier: PeerVerifier, peer: String, now: @escaping @Sendable () -> Date,
        expected: @escaping @Sendable (SPIFFEIdentity) -> String?,
        onRefusal: @escaping @Sendable (IdentityError) -> Void = { _ in }
    ) {
        self.verifierState = Mutex(verifier)
        self.peer = peer
        self.now = now
        self.expected = expected
        self.onRefusal = onRefusal
    }

    var verifier: PeerVerifier { verifierState.withLock { $0 } }

    /// Refuses, from the next handshake on, the serials on `revocations` instead of those the
    /// check was made with.
    func update(revocations: RevocationList) {
        verifierState.withLock { verifier in
            guard verifier.revocations != revocations else { return }
            verifier = PeerVerifier(ca: verifier.ca, cluster: verifier.cluster, revocations: revocations)
        }
    }

    /// The serial (`CertificateSerial`'s form) of the certificate of the last peer accepted; nil
    /// before one was.
    var acceptedSerial: String? { lastAcceptedSerial.withLock { $0 } }

    /// The most recent refusal, if any.
    var refusal: IdentityError? { lastRefusal.withLock { $0 } }

    /// When the certificate of the last peer accepted is valid; nil before one was.
    var acceptedValidity: ClosedRange<Date>? { lastAccepted.withLock { $0 } }

    func clearRefusal() { lastRefusal.withLock { $0 = nil } }

    /// Whether the last peer refused presented a provisional certificate (a joining agent's).
    var refusedProvisional: Bool { lastProvisional.withLock { $0 != nil } }

    /// When the certificate of the peer last accepted expires; nil before any handshake.
    var acceptedNotValidAfter: Date? { acceptedValidity?.upperBound }

    /// The callback NIOSSL runs in place of its own chain verification.
    var callback: @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void {
        { [self] certificates, promise in
            let leaf = try? certificates.first?.toDERBytes()
            switch verifier.verify(leafDER: leaf, peer: peer, now: now(), expected: expected) {
            case .success:
                lastRefusal.withLock { $0 = nil }
                lastProvisional.withLock { $0 = nil }
                if let leaf, let validity = PeerVerifier.validity(ofDER: leaf) {
                    lastAccepted.withLock { $0 = validity }
                }
                if let leaf, let serial = PeerVerifier.serial(ofDER: leaf) {
                    lastAcceptedSerial.withLock { $0 = serial }
                }
                promise.succeed(.certificateVerified(VerificationMetadata(nil)))
            case .failure(let error):
                lastRefusal.withLock { $0 = error }
                lastProvisional.withLock { $0 = leaf.flatMap { JoinRequest.isProvisional(der: $0) ? $0 : nil } }
                onRefusal(error)
                promise.succeed(.failed)
            }
        }
    }
}
