import Crypto
import Foundation
import X509

/// Checks the chain a controller presents to a joining agent, which has no CA certificate yet,
/// only the SHA-256 fingerprint its join token pins: the chain's last certificate must be the
/// CA with that fingerprint, and its first a certificate of that CA naming
/// `spiffe://CLUSTER/controller`, inside its validity window. Another CA (a man in the middle)
/// is refused, naming both fingerprints.
public struct PinnedCAVerifier: Sendable {
    public let fingerprint: [UInt8]
    public let cluster: String

    public init(fingerprint: [UInt8], cluster: String) {
        self.fingerprint = fingerprint
        self.cluster = cluster
    }

    /// Why `chain` (DER, leaf first) is refused; nil when it passes.
    public func refusal(of chain: [[UInt8]], peer: String, now: Date) -> IdentityError? {
        let pinned = JoinToken.hex(fingerprint)
        guard let leaf = chain.first else { return .noCertificate(peer: peer) }
        guard chain.count >= 2, let root = chain.last else {
            return .untrusted(
                subject: Self.describe(leaf),
                reason:
                    "it presented no CA certificate, and this agent (not enrolled yet) knows only the CA "
                    + "fingerprint \(pinned) its join token pins")
        }
        let presented = JoinToken.hex(SHA256.hash(data: root))
        guard presented == pinned else {
            return .untrusted(
                subject: Self.describe(leaf),
                reason:
                    "its chain ends at a CA with SHA-256 fingerprint \(presented), not \(pinned), the one the "
                    + "join token pins")
        }
        let ca: Certificate
        do {
            ca = try Certificate(derEncoded: root)
        } catch {
            return .unreadable(what: "the CA certificate \(peer) presented", reason: "\(error)")
        }
        let expected = SPIFFEIdentity.controller(cluster: cluster)
        let result = PeerVerifier(ca: ca, cluster: cluster).verify(
            leafDER: leaf, peer: peer, now: now, expected: { $0 == expected ? nil : expected.uri })
        if case .failure(let error) = result { return error }
        return nil
    }

    /// Whether `der` is a certificate whose SHA-256 is the pinned fingerprint.
    public func isPinned(_ der: [UInt8]) -> Bool {
        Array(SHA256.hash(data: der)) == fingerprint
    }

    static func describe(_ der: [UInt8]) -> String {
        (try? Certificate(derEncoded: der)).map(PeerVerifier.describe) ?? "an unreadable certificate"
    }
}
