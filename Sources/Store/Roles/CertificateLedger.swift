import Foundation

/// The role that knows which certificate serials the cluster CA issued to which node, and
/// which of them are revoked.
///
/// A serial is revoked once and stays revoked: a second revocation of it changes nothing (its
/// first time and reason stay). Nothing here is ever deleted.
public protocol CertificateLedger: Sendable {
    /// Records that `certificate` was issued; recording the same serial again changes nothing.
    func recordIssuedCertificate(_ certificate: IssuedCertificate) async throws

    /// Every certificate issued to `node` (every node's when nil), oldest first.
    func issuedCertificates(node: String?) async throws -> [IssuedCertificate]

    /// Revokes every certificate issued to `node` that is not revoked yet, at `now` for
    /// `reason`, and returns those it revoked (empty when there were none).
    func revokeCertificates(ofNode node: String, reason: String, now: Date) async throws -> [RevokedCertificate]

    /// Every revoked serial, oldest revocation first.
    func revokedCertificates() async throws -> [RevokedCertificate]
}

extension CertificateLedger {
    /// The nodes whose every issued certificate is revoked (and that had at least one): the
    /// controller treats them as gone and never dials them. A node issued a new certificate
    /// after its revocation is no longer among them.
    public func revokedNodes() async throws -> Set<String> {
        let revoked = Set(try await revokedCertificates().map(\.serial))
        var live: Set<String> = []
        var nodes: Set<String> = []
        for certificate in try await issuedCertificates(node: nil) {
            if revoked.contains(certificate.serial) {
                nodes.insert(certificate.node)
            } else {
                live.insert(certificate.node)
            }
        }
        return nodes.subtracting(live)
    }
}
