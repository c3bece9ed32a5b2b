import Foundation
import Identity
import MeshwardCore
import Testing

@Suite("cluster identities")
struct IdentityTests {
    @Test(
        "SPIFFE URIs of nodes and controllers parse; anything else is refused",
        arguments: [
            ("spiffe://shop/node/web-1", SPIFFEIdentity?.some(.node(cluster: "shop", name: "web-1"))),
            ("spiffe://shop/controller", .some(.controller(cluster: "shop"))),
            ("spiffe://shop/node/", nil),
            ("spiffe:///controller", nil),
            ("https://shop/controller", nil),
            ("spiffe://shop/node/a/b", nil),
        ])
    func parse(uri: String, expected: SPIFFEIdentity?) {
        #expect(SPIFFEIdentity(uri: uri) == expected)
    }

    @Test("an agent certificate names the node's SPIFFE ID and addresses and verifies against its CA only")
    func agentCertificate() throws {
        let now = Date()
        let ca = try ClusterCA.create(cluster: "shop", now: now)
        let addresses = [IPAddress("198.18.1.10"), IPAddress("2001:db8::10")].compactMap { $0 }
        let issued = try ca.issue(
            for: .node(cluster: "shop", name: "web-1"), addresses: addresses, now: now, validity: .seconds(3600))
        #expect(PeerVerifier.identity(of: issued.certificate) == .node(cluster: "shop", name: "web-1"))
        #expect(PeerVerifier.addresses(of: issued.certificate) == addresses)
        let der = try issued.certificate.serializeAsPEM().derBytes
        let verified = PeerVerifier(ca: ca.certificate, cluster: "shop").verify(
            leafDER: der, peer: "test", now: now, expected: { _ in nil })
        #expect(try verified.get() == .node(cluster: "shop", name: "web-1"))
        let other = try ClusterCA.create(cluster: "shop", now: now)
        let refused = PeerVerifier(ca: other.certificate, cluster: "shop").verify(
            leafDER: der, peer: "test", now: now, expected: { _ in nil })
        guard case .failure(.untrusted) = refused else {
            Issue.record("another CA's certificate gave \(refused)")
            return
        }
    }

    @Test("a CA read back from its PEM certificate and DER key issues certificates that verify")
    func caRoundTrip() throws {
        let now = Date()
        let ca = try ClusterCA.create(cluster: "shop", now: now)
        let restored = try ClusterCA(
            cluster: "shop", certificatePEM: try ca.certificatePEM, privateKeyDER: ca.privateKeyDER)
        let issued = try restored.issue(for: .controller(cluster: "shop"), now: now, validity: .seconds(60))
        let result = PeerVerifier(ca: ca.certificate, cluster: "shop").verify(
            leafDER: try issued.certificate.serializeAsPEM().derBytes, peer: "test", now: now, expected: { _ in nil })
        #expect(try result.get() == .controller(cluster: "shop"))
    }
}
