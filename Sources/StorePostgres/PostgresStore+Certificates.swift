import Foundation
import PostgresNIO
import Store

extension PostgresStore: CertificateLedger {
    /// Records that `certificate` was issued; the same serial again changes nothing.
    public func recordIssuedCertificate(_ certificate: IssuedCertificate) async throws {
        let issuedAt = certificate.issuedAt.storedValue
        let notValidAfter = certificate.notValidAfter.storedValue
        try await transaction("record issued certificate \(certificate.serial) of node \(certificate.node)") {
            connection in
            try await connection.query(
                """
                INSERT INTO issued_certificates (serial, node, issued_at, not_valid_after)
                VALUES (\(certificate.serial), \(certificate.node), \(issuedAt), \(notValidAfter))
                ON CONFLICT (serial) DO NOTHING
                """, logger: logger)
        }
    }

    /// Every certificate issued to `node` (every node's when nil), oldest first.
    public func issuedCertificates(node: String?) async throws -> [IssuedCertificate] {
        try await transaction("read issued certificates", .snapshot) { connection in
            var certificates: [IssuedCertificate] = []
            for try await (serial, owner, issuedAt, notValidAfter) in try await connection.query(
                """
                SELECT serial, node, issued_at, not_valid_after FROM issued_certificates
                WHERE \(node)::text IS NULL OR node = \(node) ORDER BY issued_at, serial
                """, logger: logger
            ).decode((String, String, Double, Double).self) {
                certificates.append(
                    IssuedCertificate(
                        serial: serial, node: owner, issuedAt: Date(storedValue: issuedAt),
                        notValidAfter: Date(storedValue: notValidAfter)))
            }
            return certificates
        }
    }

    /// Revokes, in one statement, every certificate of `node` not revoked yet.
    public func revokeCertificates(
        ofNode node: String, reason: String, now: Date
    ) async throws -> [RevokedCertificate] {
        let at = now.storedValue
        return try await transaction("revoke the certificates of node \(node)") { connection in
            var serials: [String] = []
            for try await serial in try await connection.query(
                """
                INSERT INTO revoked_certificates (serial, node, revoked_at, reason)
                SELECT serial, node, \(at), \(reason) FROM issued_certificates
                WHERE node = \(node) AND serial NOT IN (SELECT serial FROM revoked_certificates)
                ON CONFLICT (serial) DO NOTHING
                RETURNING serial
                """, logger: logger
            ).decode(String.self) {
                serials.append(serial)
            }
            return serials.sorted().map { RevokedCertificate(serial: $0, node: node, revokedAt: now, reason: reason) }
        }
    }

    /// Every revoked serial, oldest revocation first.
    public func revokedCertificates() async throws -> [RevokedCertificate] {
        try await transaction("read revoked certificates", .snapshot) { connection in
            var revoked: [RevokedCertificate] = []
            for try await (serial, node, revokedAt, reason) in try await connection.query(
                "SELECT serial, node, revoked_at, reason FROM revoked_certificates ORDER BY revoked_at, serial",
                logger: logger
            ).decode((String, String, Double, String).self) {
                revoked.append(
                    RevokedCertificate(
                        serial: serial, node: node, revokedAt: Date(storedValue: revokedAt), reason: reason))
            }
            return revoked
        }
    }
}
