import Foundation
import GRDB

extension StateStore: CertificateLedger {
    /// Records that `certificate` was issued; the same serial again changes nothing.
    public func recordIssuedCertificate(_ certificate: IssuedCertificate) throws {
        try writeUnfenced("record issued certificate \(certificate.serial) of node \(certificate.node)") { db in
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO issued_certificates (serial, node, issued_at, not_valid_after)
                    VALUES (?, ?, ?, ?)
                    """,
                arguments: [
                    certificate.serial, certificate.node, certificate.issuedAt.storedValue,
                    certificate.notValidAfter.storedValue,
                ])
        }
    }

    /// Every certificate issued to `node` (every node's when nil), oldest first.
    public func issuedCertificates(node: String?) throws -> [IssuedCertificate] {
        try read("read issued certificates") { db in
            let rows: [Row]
            if let node {
                rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT serial, node, issued_at, not_valid_after FROM issued_certificates
                        WHERE node = ? ORDER BY issued_at, serial
                        """, arguments: [node])
            } else {
                rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT serial, node, issued_at, not_valid_after FROM issued_certificates
                        ORDER BY issued_at, serial
                        """)
            }
            return rows.map { row in
                IssuedCertificate(
                    serial: row[0], node: row[1], issuedAt: Date(storedValue: row[2]),
                    notValidAfter: Date(storedValue: row[3]))
            }
        }
    }

    /// Revokes, in one transaction, every certificate of `node` not revoked yet.
    public func revokeCertificates(ofNode node: String, reason: String, now: Date) throws -> [RevokedCertificate] {
        try writeUnfenced("revoke the certificates of node \(node)") { db in
            let serials = try String.fetchAll(
                db,
                sql: """
                    SELECT serial FROM issued_certificates
                    WHERE node = ? AND serial NOT IN (SELECT serial FROM revoked_certificates)
                    ORDER BY issued_at, serial
                    """, arguments: [node])
            for serial in serials {
                try db.execute(
                    sql: "INSERT INTO revoked_certificates (serial, node, revoked_at, reason) VALUES (?, ?, ?, ?)",
                    arguments: [serial, node, now.storedValue, reason])
            }
            return serials.map { RevokedCertificate(serial: $0, node: node, revokedAt: now, reason: reason) }
        }
    }

    /// Every revoked serial, oldest revocation first.
    public func revokedCertificates() throws -> [RevokedCertificate] {
        try read("read revoked certificates") { db in
            try Row.fetchAll(
                db, sql: "SELECT serial, node, revoked_at, reason FROM revoked_certificates ORDER BY revoked_at, serial"
            )
            .map { row in
                RevokedCertificate(serial: row[0], node: row[1], revokedAt: Date(storedValue: row[2]), reason: row[3])
            }
        }
    }
}
