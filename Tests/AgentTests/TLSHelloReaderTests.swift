import Foundation
import Identity
import NIOCore
import NIOEmbedded
import NIOSSL
import Testing

@testable import Agent

/// `TLSHelloReader` on real hellos: a ClientHello that NIOSSL (BoringSSL) writes for a
/// configuration, and the ServerHello its server answers with, both in embedded channels.
@Suite("reading TLS hellos off the wire")
struct TLSHelloReaderTests {
    /// The first bytes a NIOSSL client of `configuration` sends: its ClientHello.
    static func clientHello(_ configuration: TLSConfiguration) throws -> [UInt8] {
        let channel = EmbeddedChannel()
        let context = try NIOSSLContext(configuration: configuration)
        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
        _ = try channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readableBytesView }
        _ = try? channel.finish()
        return bytes
    }

    /// What a NIOSSL server of the control channel's policy (its groups replaced by `groups`,
    /// when given) answers `hello` with.
    static func serverAnswer(to hello: [UInt8], groups: [NIOTLSCurve]? = nil) throws -> [UInt8] {
        let ca = try ClusterCA.create(cluster: "test", now: Date())
        let issued = try ca.issue(for: .node(cluster: "test", name: "a"), now: Date(), validity: .seconds(3600))
        var configuration = try ControlChannelTLS.configuration(
            role: .server, certificateChain: [issued.certificatePEM], privateKeyPEM: issued.privateKeyPEM,
            trustRootsPEM: [try ca.certificatePEM])
        if let groups { configuration.curves = groups }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            NIOSSLServerHandler(context: try NIOSSLContext(configuration: configuration)))
        channel.pipeline.fireChannelActive()
        _ = try? channel.writeInbound(ByteBuffer(bytes: hello))
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readableBytesView }
        _ = try? channel.finish()
        return bytes
    }

    /// A controller's configuration under the control channel's policy.
    static func policyClient() throws -> TLSConfiguration {
        let ca = try ClusterCA.create(cluster: "test", now: Date())
        let issued = try ca.issue(for: .controller(cluster: "test"), now: Date(), validity: .seconds(3600))
        return try ControlChannelTLS.configuration(
            role: .client, certificateChain: [issued.certificatePEM], privateKeyPEM: issued.privateKeyPEM,
            trustRootsPEM: [try ca.certificatePEM])
    }

    @Test("the control channel's ClientHello offers TLS 1.3 and X25519MLKEM768 alone, read in one piece")
    func policyClientHello() throws {
        var reader = TLSHelloReader()
        let events = reader.read(try Self.clientHello(Self.policyClient()))
        #expect(events == [.clientHello(TLSClientOffer(versions: [0x0304], groups: [0x11EC]))])
        #expect(reader.finished)
    }

    @Test("a ClientHello split at every byte boundary reads the same as in one piece")
    func splitAnywhere() throws {
        let hello = try Self.clientHello(Self.policyClient())
        var whole = TLSHelloReader()
        let expected = whole.read(hello)
        #expect(!expected.isEmpty)
        for cut in 1..<hello.count {
            var reader = TLSHelloReader()
            let first = reader.read(hello[..<cut])
            #expect(first.isEmpty, "an incomplete hello said something at \(cut)")
            #expect(first + reader.read(hello[cut...]) == expected, "cut at \(cut)")
        }
    }

    @Test("a TLS 1.2 client's ClientHello offers no TLS 1.3, and the policy refuses it for its version")
    func tls12ClientHello() throws {
        var configuration = try Self.policyClient()
        configuration.minimumTLSVersion = .tlsv12
        configuration.maximumTLSVersion = .tlsv12
        configuration.curves = nil
        var reader = TLSHelloReader()
        let events = reader.read(try Self.clientHello(configuration))
        guard case .clientHello(let offer) = events.first else {
            Issue.record("no ClientHello: \(events)")
            return
        }
        #expect(!offer.versions.contains(0x0304))
        #expect(offer.versions.contains(0x0303))
        #expect(ControlChannelTLS.refusal(of: offer)?.reason == .tlsVersion)
    }

    @Test("a ClientHello of the library's defaults offers X25519MLKEM768 among classical groups and is not refused")
    func defaultClientHello() throws {
        var configuration = try Self.policyClient()
        configuration.minimumTLSVersion = .tlsv12
        configuration.maximumTLSVersion = nil
        configuration.curves = nil
        var reader = TLSHelloReader()
        guard case .clientHello(let offer) = reader.read(try Self.clientHello(configuration)).first else {
            Issue.record("no ClientHello")
            return
        }
        #expect(offer.groups.contains(0x11EC) && offer.groups.contains(0x001D), "\(offer.groups)")
        #expect(ControlChannelTLS.refusal(of: offer) == nil)
    }

    @Test("the ServerHello of the control channel's server names TLS 1.3 and X25519MLKEM768")
    func policyServerHello() throws {
        let answer = try Self.serverAnswer(to: try Self.clientHello(Self.policyClient()))
        var reader = TLSHelloReader()
        #expect(reader.read(answer) == [.serverHello(TLSNegotiation(version: 0x0304, group: 0x11EC))])
    }

    @Test(
        "a server that wants a group the client offered without a key share answers with a HelloRetryRequest naming it, and the reader reads on past it"
    )
    func helloRetry() throws {
        // BoringSSL always sends a key share for the first group and for one post-quantum group
        // it offers, so the retry is shown with two classical groups: X25519 shared, P-256 wanted.
        var configuration = try Self.policyClient()
        configuration.curves = [.x25519, .secp256r1]
        let answer = try Self.serverAnswer(to: try Self.clientHello(configuration), groups: [.secp256r1])
        var reader = TLSHelloReader()
        #expect(reader.read(answer) == [.helloRetry(group: 0x0017)])
        #expect(!reader.finished, "a HelloRetryRequest is not the end of the hellos")
    }

    @Test("a classical-only client is answered with a handshake_failure alert, which the reader reports")
    func classicalClientAlert() throws {
        var configuration = try Self.policyClient()
        configuration.curves = [.x25519]
        let answer = try Self.serverAnswer(to: try Self.clientHello(configuration))
        var reader = TLSHelloReader()
        #expect(reader.read(answer) == [.alert(description: 40)])
    }

    @Test(
        "bytes that are not a TLS record are reported once and nothing after",
        arguments: [Array("GET / HTTP/1.1\r\n".utf8), Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)])
    func notTLS(bytes: [UInt8]) {
        var reader = TLSHelloReader()
        #expect(reader.read(bytes) == [.notTLS])
        #expect(reader.read(bytes).isEmpty)
    }

    @Test("a malformed ClientHello inside a well-formed record reports nothing and never reads past its end")
    func malformedHello() throws {
        let hello = try Self.clientHello(Self.policyClient())
        // Truncate the handshake body but keep the record and handshake lengths consistent.
        for length in [0, 1, 2, 10, 34, 35, 40] {
            let body = Array(hello[9..<(9 + length)])
            let message: [UInt8] = [1, 0, UInt8(length >> 8), UInt8(length & 0xFF)] + body
            let record: [UInt8] = [22, 3, 1, UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message
            var reader = TLSHelloReader()
            #expect(reader.read(record).isEmpty, "length \(length)")
            #expect(reader.finished)
        }
    }
}
