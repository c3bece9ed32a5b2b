import Foundation
import MeshwardCore
import Testing

@testable import Store

/// The `CertificateLedger` role, run against every conformer: the serials issued to each node
/// and the ones revoked, with node, time and reason.
@Suite("Store roles: issued and revoked certificates")
struct CertificateLedgerTests {
    static func issued(_ serial: String, _ node: String, at offset: TimeInterval) -> IssuedCertificate {
        IssuedCertificate(
            serial: serial, node: node, issuedAt: t0.addingTimeInterval(offset),
            notValidAfter: t0.addingTimeInterval(offset + 7 * 86_400))
    }

    @Test(
        "issued certificates come back per node and for every node, oldest first; recording a serial twice keeps one",
        arguments: StoreConformer.all)
    func issuedPerNode(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        #expect(try await test.store.issuedCertificates(node: nil) == [])
        let web2 = Self.issued("0b:02", "web-2", at: 20)
        let web1 = Self.issued("0a:01", "web-1", at: 10)
        let web1Again = Self.issued("0a:03", "web-1", at: 30)
        for certificate in [web2, web1, web1Again, web1] { try await test.store.recordIssuedCertificate(certificate) }
        #expect(try await test.store.issuedCertificates(node: "web-1") == [web1, web1Again])
        #expect(try await test.store.issuedCertificates(node: "web-2") == [web2])
        #expect(try await test.store.issuedCertificates(node: "db-1") == [])
        #expect(try await test.connect().issuedCertificates(node: nil) == [web1, web2, web1Again])
    }

    @Test(
        "revoking a node revokes every certificate issued to it, once, with its time and reason; other nodes keep theirs",
        arguments: StoreConformer.all)
    func revokeNode(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        for certificate in [
            Self.issued("0a:01", "web-1", at: 10), Self.issued("0a:03", "web-1", at: 30),
            Self.issued("0b:02", "web-2", at: 20),
        ] {
            try await test.store.recordIssuedCertificate(certificate)
        }
        let at = t0.addingTimeInterval(100)
        let revoked = try await test.store.revokeCertificates(ofNode: "web-1", reason: "host stolen", now: at)
        #expect(
            revoked == [
                RevokedCertificate(serial: "0a:01", node: "web-1", revokedAt: at, reason: "host stolen"),
                RevokedCertificate(serial: "0a:03", node: "web-1", revokedAt: at, reason: "host stolen"),
            ])
        // A second revocation finds nothing new and keeps the first time and reason.
        let again = try await test.connect().revokeCertificates(
            ofNode: "web-1", reason: "again", now: at.addingTimeInterval(50))
        #expect(again == [])
        #expect(try await test.connect().revokedCertificates() == revoked)
        #expect(try await test.store.revokeCertificates(ofNode: "db-1", reason: "unknown", now: at) == [])
        #expect(try await test.store.revokedNodes() == ["web-1"])
    }

    @Test(
        "a node issued a new certificate after its revocation is no longer a revoked node; its old serials stay revoked",
        arguments: StoreConformer.all)
    func reissuedAfterRevocation(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        try await test.store.recordIssuedCertificate(Self.issued("0a:01", "web-1", at: 10))
        _ = try await test.store.revokeCertificates(
            ofNode: "web-1", reason: "re-imaged", now: t0.addingTimeInterval(20))
        #expect(try await test.store.revokedNodes() == ["web-1"])
        try await test.store.recordIssuedCertificate(Self.issued("0a:05", "web-1", at: 30))
        #expect(try await test.store.revokedNodes() == [])
        #expect(try await test.store.revokedCertificates().map(\.serial) == ["0a:01"])
    }
}
