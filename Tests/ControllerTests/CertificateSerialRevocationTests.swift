import Agent
import Foundation
import Identity
import Logging
import MeshwardCore
import MeshwardTestKit
import Testing

@testable import Controller
@testable import Reconciler
@testable import ReconcilerTestSupport
@testable import Store

/// Certificate serials as the CA issues them, the Store records them and the verifier compares
/// them: two hex digits per byte, and revocations recorded before that form still refuse.
@Suite("certificate serials and revocation")
struct CertificateSerialRevocationTests {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// `bytes` as two lowercase hex digits each, joined by colons (written out here, not through
    /// `CertificateSerial`, so that the check can fail).
    static func twoDigits(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined(separator: ":")
    }

    /// A certificate from a new CA whose serial has a byte below 0x10 (most random serials do).
    static func issuedWithSmallByte() throws -> (ClusterCA, IssuedCredential) {
        let ca = try ClusterCA.create(cluster: "shop", now: Date())
        for _ in 0..<64 {
            let issued = try ca.issue(for: .node(cluster: "shop", name: "web-1"), now: Date(), validity: .seconds(3600))
            if issued.certificate.serialNumber.bytes.contains(where: { $0 < 0x10 }) { return (ca, issued) }
        }
        throw Failure(description: "64 serials without a byte below 0x10")
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    @Test(
        "a serial with a byte below 0x10 is recorded, described and named in a refusal with two hex digits per byte")
    func twoDigitSerial() throws {
        let (ca, issued) = try Self.issuedWithSmallByte()
        let expected = Self.twoDigits(issued.certificate.serialNumber.bytes)
        #expect(issued.serial == expected)
        #expect(issued.certificate.serial.description == expected)
        #expect(PeerVerifier.describe(issued.certificate).hasSuffix("(serial \(expected))"))
        let verified = PeerVerifier(
            ca: ca.certificate, cluster: "shop",
            revocations: RevocationList(entries: [
                expected: .init(node: "web-1", revokedAt: Date(timeIntervalSince1970: 0), reason: "stolen")
            ])
        ).verify(
            leafDER: try issued.certificate.serializeAsPEM().derBytes, peer: "test", now: Date(),
            expected: { _ in nil })
        #expect(
            verified
                == .failure(
                    .revoked(serial: expected, node: "web-1", revokedAt: "1970-01-01T00:00:00Z", reason: "stolen")))
    }

    @Test("a revocation list naming a serial without each byte's leading zero (the older form) refuses its certificate")
    func olderFormRevoked() throws {
        let (ca, issued) = try Self.issuedWithSmallByte()
        let older = String(describing: issued.certificate.serialNumber)
        #expect(older != issued.serial, "the older form \(older) is the two-digit one")
        let list = RevocationList(entries: [
            older: .init(node: "web-1", revokedAt: Date(timeIntervalSince1970: 0), reason: "stolen")
        ])
        #expect(list.revocation(of: issued.serial)?.reason == "stolen")
        #expect(list.revocation(of: older)?.reason == "stolen")
        let verified = PeerVerifier(ca: ca.certificate, cluster: "shop", revocations: list).verify(
            leafDER: try issued.certificate.serializeAsPEM().derBytes, peer: "test", now: Date(),
            expected: { _ in nil })
        guard case .failure(.revoked(let serial, _, _, _)) = verified else {
            Issue.record("not refused as revoked: \(verified)")
            return
        }
        #expect(serial == issued.serial)
    }

    @Test(
        "an agent certificate issued before the two-digit form, recorded so in the Store, is refused after agent revoke run by this Meshward"
    )
    func issuedBeforeRevokedAfter() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-serials-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let state = directory.appendingPathComponent("state").path
        let intent = try FleetSpec.threeTier.compile()

        // Agent credentials for n3 until one certificate's serial has a byte below 0x10.
        let before = MeshwardController(stateDirectory: state, logger: logger, clock: ManualClock())
        var found: (credentials: AgentCredentials, certificate: IssuedCredential)?
        for attempt in 0..<64 where found == nil {
            let agent = AgentDirectory(path: directory.appendingPathComponent("agent-\(attempt)").path)
            let credentials = try await before.writeAgentCredentials(intent, node: "n3", to: agent)
            let issued = try IssuedCredential(
                certificatePEM: credentials.certificatePEM, privateKeyPEM: credentials.privateKeyPEM)
            if issued.certificate.serialNumber.bytes.contains(where: { $0 < 0x10 }) {
                found = (credentials, issued)
            }
        }
        let (credentials, issued) = try #require(found, "64 serials without a byte below 0x10")

        // The Store as a Meshward before the two-digit form left it: every serial as
        // swift-certificates prints it, and the migration not applied.
        let store = try StateStore.open(directory: state, logger: logger)
        try store.write("record the serials as before the two-digit form") { db in
            for serial in try String.fetchAll(db, sql: "SELECT serial FROM issued_certificates") {
                let older = try #require(CertificateSerial(serial)).bytes.map { String($0, radix: 16) }
                    .joined(separator: ":")
                try db.execute(
                    sql: "UPDATE issued_certificates SET serial = ? WHERE serial = ?", arguments: [older, serial])
            }
            try db.execute(
                sql: "DELETE FROM grdb_migrations WHERE identifier = '10-two-digit-certificate-serials'")
        }
        let recorded = try store.read("read the serials") { db in
            try String.fetchAll(db, sql: "SELECT serial FROM issued_certificates")
        }
        #expect(recorded.contains(String(describing: issued.certificate.serialNumber)))
        #expect(!recorded.contains(issued.serial))

        // This Meshward revokes n3, and the list it loads refuses the older certificate.
        let after = MeshwardController(stateDirectory: state, logger: logger, clock: ManualClock())
        let revoked = try await after.revokeAgent(intent, node: "n3", reason: "host retired")
        #expect(revoked.map(\.serial).contains(issued.serial), "\(revoked.map(\.serial))")
        let list = try await ClusterCredentials.revocationList(
            from: try StateStore.open(directory: state, logger: logger))
        let verifier = PeerVerifier(
            ca: try ClusterCA.certificate(pem: credentials.caCertificatePEM), cluster: intent.cluster,
            revocations: list)
        let verified = verifier.verify(
            leafDER: try issued.certificate.serializeAsPEM().derBytes, peer: "n3", now: Date(),
            expected: { _ in nil })
        guard case .failure(.revoked(let serial, let node, _, let reason)) = verified else {
            Issue.record("the certificate issued before is not refused as revoked: \(verified)")
            return
        }
        #expect(serial == issued.serial)
        #expect(node == "n3")
        #expect(reason == "host retired")
    }
}
