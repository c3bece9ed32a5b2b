import Foundation
import Kernel
import MeshwardCore
import Testing

@testable import Controller

/// The fingerprints a saved plan carries are fed to SHA-256 line by line; they must stay the
/// digest of the whole text, so that a plan saved by an earlier release still matches.
@Suite("State fingerprints")
struct StateFingerprintTests {
    @Test("the fleet fingerprint is SHA-256 of its lines joined by newlines, as saved plans hold it")
    func fleetFingerprintIsDigestOfJoinedText() {
        let sa = SecurityAssociation(
            source: IPAddress("198.18.0.1")!, destination: IPAddress("198.18.0.2")!, spi: SPI(0x101), reqid: Reqid(7),
            cipher: .aesGCM256, key: .fingerprint("f"))
        let policy = SecurityPolicy(
            selector: PolicySelector(
                source: IPPrefix(host: sa.source), destination: IPPrefix(host: sa.destination), traffic: .any),
            direction: .outbound,
            template: PolicyTemplate(family: .ipv4, spi: sa.spi, reqid: Reqid(7), isOptional: false))
        let observations = ["web": NodeObservation(securityAssociations: [sa], policies: [policy])]
        let text = [
            "meshward-fleet/1", "node db unreachable", "node web",
            "  sa \(sa.source) -> \(sa.destination) spi \(sa.spi.hex) \(sa.cipher.rawValue) reqid \(sa.reqid)",
            "  \(policy)",
        ].joined(separator: "\n")
        #expect(
            StateFingerprint.fleet(observations: observations, unreachable: ["db": "down"])
                == StateFingerprint.sha256(text))
    }

    @Test("SHA-256 of a text is the standard digest (FIPS 180-2's \"abc\" and empty-string vectors)")
    func sha256KnownAnswers() {
        #expect(
            StateFingerprint.sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(StateFingerprint.sha256("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("the Store fingerprint is SHA-256 of its lines joined by newlines, as saved plans hold it")
    func storeFingerprintIsDigestOfJoinedText() {
        let id = ChannelID(from: "web", to: "db", family: .ipv4)
        let record = ChannelRecord(id: id, step: .new, stepChangedAt: Date(timeIntervalSince1970: 5), generations: [])
        let text = ["meshward-store/1", "revision abc", "channel \(id) step new since 5.0"].joined(separator: "\n")
        #expect(StateFingerprint.store(records: [id: record], revision: "abc") == StateFingerprint.sha256(text))
    }
}
