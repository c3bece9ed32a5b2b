import Foundation
import Testing

@testable import DesiredState

/// `defaults.certificates.lifetime`: how long agent certificates are issued for.
@Suite("defaults.certificates.lifetime")
struct CertificateLifetimeTests {
    static let body = """
        nodes:
          - name: a
            addresses: [198.18.0.1]
          - name: b
            addresses: [198.18.0.2]
        flows:
          - name: f
            from: { name: a }
            to: { name: b }

        """

    static func spec(_ certificates: String?) -> String {
        SpecTesting.header + (certificates.map { "defaults:\n  certificates: \($0)\n" } ?? "") + body
    }

    @Test(
        "a lifetime from 1h to 365d is taken as written",
        arguments: [("{ lifetime: 1h }", 3_600), ("{ lifetime: 12h }", 43_200), ("{ lifetime: 365d }", 31_536_000)])
    func accepted(certificates: String, seconds: Int64) throws {
        let result = SpecTesting.load(Self.spec(certificates))
        let intent = try #require(result.intent, "\(result.diagnostics.map(\.description))")
        #expect(intent.certificateLifetime == .seconds(seconds))
    }

    @Test("without the setting (or with an empty certificates block) a certificate lives 7 days")
    func defaultLifetime() throws {
        for spec in [Self.spec(nil), Self.spec("{}")] {
            let result = SpecTesting.load(spec)
            let intent = try #require(result.intent, "\(result.diagnostics.map(\.description))")
            #expect(intent.certificateLifetime == .seconds(7 * 86_400))
        }
    }

    @Test(
        "a lifetime outside 1h to 365d, without a unit or under an unknown key is refused at its place",
        arguments: [
            (
                "{ lifetime: 30m }", "spec.yaml:4:29:",
                "'certificates.lifetime' must be at least 1h and at most 365d, found '30m'"
            ),
            (
                "{ lifetime: 366d }", "spec.yaml:4:29:",
                "'certificates.lifetime' must be at least 1h and at most 365d, found '366d'"
            ),
            ("{ lifetime: 0s }", "spec.yaml:4:29:", "'certificates.lifetime' must be longer than zero, found '0s'"),
            ("{ lifetime: 7 }", "spec.yaml:4:29:", "'certificates.lifetime' needs a unit: write '7s'"),
            ("{ expiry: 7d }", "spec.yaml:4:", "expiry"),
        ])
    func refused(certificates: String, location: String, message: String) {
        let result = SpecTesting.load(Self.spec(certificates))
        let descriptions = result.diagnostics.map(\.description)
        #expect(result.intent == nil)
        #expect(
            descriptions.contains { $0.hasPrefix(location) && $0.contains(message) },
            "expected \(location) \(message)\n  got:\n    \(descriptions.joined(separator: "\n    "))")
    }

    @Test("the default lifetime leaves the revision as it was; another lifetime changes it")
    func revision() throws {
        let plain = try #require(SpecTesting.load(Self.spec(nil)).intent)
        let seven = try #require(SpecTesting.load(Self.spec("{ lifetime: 7d }")).intent)
        let one = try #require(SpecTesting.load(Self.spec("{ lifetime: 1d }")).intent)
        #expect(plain.revision == seven.revision)
        #expect(plain.revision != one.revision)
    }
}
