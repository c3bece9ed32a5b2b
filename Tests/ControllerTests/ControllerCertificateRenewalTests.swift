import Agent
import Foundation
import Identity
import Logging
import MeshwardTestKit
import Store
import Testing

@testable import Controller
@testable import Reconciler

/// The controller's own certificate, kept in the Store, on an injected clock.
@Suite("Controller certificate renewal")
struct ControllerCertificateRenewalTests {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test(
        "the controller's certificate is kept until half its life has passed, then renewed in the Store from the same CA"
    )
    func renewedAtHalfLife() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-renew-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try StateStore.open(directory: directory.appendingPathComponent("state").path, logger: logger)
        let credentials = ClusterCredentials(store: store, cluster: "lab")
        let clock = ManualClock()
        let start = clock.now()
        let first = try await credentials.controller(now: start)
        let validity = ClusterCredentials.controllerValidity.timeInterval

        // Just before half its life: the same certificate, from the Store.
        let before = try await credentials.controller(now: start.addingTimeInterval(validity / 2 - 120))
        #expect(before.certificatePEM == first.certificatePEM)

        // Just after: a new key and certificate, stored, chaining to the same CA.
        let after = try await credentials.controller(now: start.addingTimeInterval(validity / 2 + 120))
        #expect(after.certificatePEM != first.certificatePEM)
        #expect(after.privateKeyPEM != first.privateKeyPEM)
        #expect(after.caCertificatePEM == first.caCertificatePEM)
        let again = try await credentials.controller(now: start.addingTimeInterval(validity / 2 + 240))
        #expect(again.certificatePEM == after.certificatePEM, "the renewed certificate is the one kept")

        let ca = try ClusterCA.certificate(pem: first.caCertificatePEM)
        let renewed = try IssuedCredential(certificatePEM: after.certificatePEM, privateKeyPEM: after.privateKeyPEM)
        let verified = PeerVerifier(ca: ca, cluster: "lab").verify(
            leafDER: try renewed.certificate.serializeAsPEM().derBytes, peer: "test",
            now: start.addingTimeInterval(validity / 2 + 240), expected: { _ in nil })
        #expect(try verified.get() == .controller(cluster: "lab"))
    }
}

/// `status`'s warning for agent certificates close to their expiry, on fixed instants.
@Suite("Agent certificate expiry warning")
struct AgentCertificateExpiryWarningTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test(
        "status warns of an agent certificate that expires within a day or has expired, and not of one with more left",
        arguments: [
            (2 * 86_400.0, nil),
            (86_400.0 + 60, nil),
            (
                86_400.0 - 60,
                "node web-1: its agent's certificate expires at 2027-01-16T07:59:00Z, within a day, and was not renewed"
            ),
            (
                60.0,
                "node web-1: its agent's certificate expires at 2027-01-15T08:01:00Z, within a day, and was not renewed"
            ),
            (-3_600.0, "node web-1: its agent's certificate expired at 2027-01-15T07:00:00Z and was not renewed"),
        ] as [(TimeInterval, String?)])
    func warning(left: TimeInterval, expected: String?) {
        let warning = StatusReport.expiryWarning("web-1", Self.now.addingTimeInterval(left), now: Self.now)
        if let expected {
            #expect(warning?.hasPrefix(expected) == true, "\(String(describing: warning))")
            #expect(warning?.hasSuffix("issue a new one with `meshward agent credentials`") == true)
        } else {
            #expect(warning == nil)
        }
    }
}
