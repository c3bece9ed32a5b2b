import Agent
import Foundation
import Logging
import MeshwardTestKit
import Store
import Testing

@testable import Controller
@testable import Reconciler

/// `agent credentials` issues for the spec's `defaults.certificates.lifetime`.
@Suite("Agent certificate lifetime")
struct AgentCredentialsLifetimeTests {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test(
        "agent credentials issues a certificate valid for the spec's lifetime, 7 days when the spec sets none",
        arguments: [("certificates: { lifetime: 12h }", 43_200.0), ("drain: 5s", 7 * 86_400.0)])
    func issuedForTheLifetime(defaults: String, seconds: TimeInterval) async throws {
        let fixture = try RevocationWorkflowTests.Fixture(logger: logger)
        defer { fixture.remove() }
        let path = fixture.directory.appendingPathComponent("fleet.yaml")
        try """
        version: 1
        cluster: lab
        defaults: { \(defaults) }
        nodes:
          - { name: a, addresses: [198.18.0.1] }
          - { name: b, addresses: [198.18.0.2] }
        flows:
          - { name: ab, from: { name: a }, to: { name: b } }
        """.write(to: path, atomically: true, encoding: .utf8)
        let (intent, _) = try MeshwardController.loadSpec([path.path])
        let now = fixture.controller.clock.now()
        _ = try await fixture.credentials(intent, node: "a")
        let issued = try #require(try await fixture.store().issuedCertificates(node: "a").first)
        // A certificate's times are whole seconds.
        #expect(abs(issued.notValidAfter.timeIntervalSince(now) - seconds) < 1, "\(issued.notValidAfter) from \(now)")
    }
}
