import Foundation
import Identity
import NIOCore
import NIOSSL
import Synchronization

/// The TLS verification of a joining agent (`PinnedCAVerifier` in NIOSSL's callback): a client
/// whose chain does not end at the pinned CA, or whose leaf is not a controller certificate of
/// it, fails the handshake. The controller certificate last accepted is kept: the enrollment
/// proof covers it.
final class ControllerPin: Sendable {
    let verifier: PinnedCAVerifier
    let now: @Sendable () -> Date
    let onRefusal: @Sendable (IdentityError) -> Void
    private let accepted = Mutex<[UInt8]?>(nil)

    init(
        verifier: PinnedCAVerifier, now: @escaping @Sendable () -> Date,
        onRefusal: @escaping @Sendable (IdentityError) -> Void
    ) {
        self.verifier = verifier
        self.now = now
        self.onRefusal = onRefusal
    }

    /// The DER of the controller certificate of the last client accepted; nil before one was.
    var lastAccepted: [UInt8]? { accepted.withLock { $0 } }

    /// The callback NIOSSL runs in place of its own chain verification.
    var callback: @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void {
        { [self] certificates, promise in
            let chain = certificates.compactMap { try? $0.toDERBytes() }
            if let error = verifier.refusal(of: chain, peer: "a client", now: now()) {
                onRefusal(error)
                promise.succeed(.failed)
                return
            }
            accepted.withLock { $0 = chain[0] }
            promise.succeed(.certificateVerified(VerificationMetadata(nil)))
        }
    }
}
