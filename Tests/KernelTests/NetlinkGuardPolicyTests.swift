import Foundation
import MeshwardCore
import MeshwardTestSupport
import Testing

@testable import Kernel

#if canImport(Glibc)
import Glibc
#endif

/// The shape of the agent's boot guard policy (outbound, required ESP template with the owner's
/// reqid and no SPI) on this machine's kernel, in a throwaway namespace: it travels through
/// netlink and back unchanged, and the kernel drops what it selects instead of sending it.
@Suite(
    "Guard-shaped policies on the kernel", .serialized,
    .enabled(TestNamespace.skipReason) { await TestNamespace.isPermitted() })
struct NetlinkGuardPolicyTests {
    /// Outbound from 198.18.0.1 to 198.18.0.3, required, no SPI: what the boot guard installs.
    static let guardPolicy = Fixtures.policy(.ipv4, 1, spi: nil)

    @Test("a guard-shaped policy encodes with SPI 0 and level required, and decodes back to the same policy")
    func encoding() throws {
        var buffer = NetlinkBuffer()
        XfrmCodec.appendPolicy(
            Self.guardPolicy, type: XfrmCodec.newPolicy, flags: NetlinkHeader.request, sequence: 1, into: &buffer)
        #expect(buffer.count == 16 + 168 + 4 + 64)
        let message = try #require(try NetlinkMessage.split(buffer.bytes).first)
        let record = try XfrmCodec.decodePolicy(message.payload)
        #expect(try record.securityPolicy().get() == Self.guardPolicy)
        let template = try #require(record.templates.first)
        #expect(template.spi == 0 && template.optional == 0 && template.reqid == Fixtures.reqid)
        #expect(record.action == 0)
    }

    @Test(
        "a guard-shaped policy installs and reads back; the kernel drops a datagram it selects (XfrmOutNoStates) and delivers it once the policy is gone"
    )
    func dropsWhatItSelects() async throws {
        try await TestNamespace.with { namespace in
            try await namespace.ip("link", "set", "lo", "up")
            try await namespace.ip("addr", "add", "198.18.0.1/32", "dev", "lo")
            try await namespace.ip("addr", "add", "198.18.0.3/32", "dev", "lo")
            // The loopback device skips IPsec by default; these hosts' traffic must meet it.
            _ = try await TestNamespace.execute(
                "/usr/sbin/ip",
                [
                    "netns", "exec", namespace.name, "/usr/sbin/sysctl", "-q", "-w", "net.ipv4.conf.lo.disable_xfrm=0",
                    "net.ipv4.conf.lo.disable_policy=0",
                ])
            let kernel = try NetlinkKernel(
                node: "node-a", endpoint: .namespace(namespace.name), reqid: Fixtures.reqid, logger: Fixtures.logger)
            let results = try await kernel.apply([.addPolicy(Self.guardPolicy)])
            #expect(results.map(\.outcome) == [.applied])
            let observed = try await kernel.observe()
            #expect(observed.policies == [Self.guardPolicy])
            let printed = try IPRoutePolicy.parse(await namespace.ip("xfrm", "policy"))
            #expect(printed == [IPRoutePolicy(Self.guardPolicy)])
            #expect(printed.first?.optional == false)

            let sockets = try await UDPPair(namespace: namespace.name, sender: "198.18.0.1", receiver: "198.18.0.3")
            defer { sockets.close() }
            let before = observed.statistics["XfrmOutNoStates"] ?? 0
            sockets.send("guarded")
            let after = try await kernel.observe().statistics["XfrmOutNoStates"] ?? 0
            #expect(after == before + 1, "XfrmOutNoStates went from \(before) to \(after)")

            // Without the policy the next datagram arrives, and it is the first one queued: the
            // guarded one never left.
            #expect(try await kernel.apply([.deletePolicy(Self.guardPolicy.identifier)]).map(\.outcome) == [.applied])
            sockets.send("control")
            #expect(sockets.receive() == "control")
        }
    }
}

/// Two UDP sockets opened inside a namespace (a socket stays in the namespace it was made in),
/// the receiver with a five-second receive timeout so that a lost datagram fails the test
/// rather than hanging it.
final class UDPPair: Sendable {
    let sender: Int32
    let receiver: Int32
    let receiverAddress: String
    let port: UInt16

    struct Failed: Error, CustomStringConvertible {
        let step: String
        let errno: Int32
        var description: String { "\(step) failed: \(ErrnoName.name(errno))" }
    }

    init(namespace: String, sender senderAddress: String, receiver receiverAddress: String) async throws {
        let opened = await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(
                    returning: Self.open(namespace: namespace, sender: senderAddress, receiver: receiverAddress))
            }.start()
        }
        let (sender, receiver, port) = try opened.get()
        self.sender = sender
        self.receiver = receiver
        self.receiverAddress = receiverAddress
        self.port = port
    }

    /// Runs on its own thread: enters the namespace, opens both sockets, and leaves it again.
    private static func open(
        namespace: String, sender: String, receiver: String
    ) -> Result<(Int32, Int32, UInt16), Failed> {
        let original = Glibc.open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        let target = Glibc.open("/var/run/netns/\(namespace)", O_RDONLY | O_CLOEXEC)
        defer {
            Glibc.close(target)
            Glibc.close(original)
        }
        guard original >= 0, target >= 0, setns(target, CLONE_NEWNET) == 0 else {
            return .failure(Failed(step: "entering the namespace", errno: errno))
        }
        defer { _ = setns(original, CLONE_NEWNET) }
        let outgoing = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let incoming = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard outgoing >= 0, incoming >= 0 else { return .failure(Failed(step: "socket", errno: errno)) }
        guard bind(incoming, address: receiver, port: 0), bind(outgoing, address: sender, port: 0) else {
            return .failure(Failed(step: "bind", errno: errno))
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(incoming, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(incoming, $0, &length) }
        }
        return .success((outgoing, incoming, UInt16(bigEndian: bound.sin_port)))
    }

    /// `setns(2)` for a network namespace: Glibc's module does not export it (it needs
    /// `_GNU_SOURCE`), so it is looked up in the C library.
    private static func setns(_ descriptor: Int32, _ type: Int32) -> Int32 {
        typealias SetNamespace = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { return -1 }
        return unsafeBitCast(symbol, to: SetNamespace.self)(descriptor, type)
    }

    /// `CLONE_NEWNET` from `<sched.h>`.
    private static let CLONE_NEWNET: Int32 = 0x4000_0000

    private static func bind(_ descriptor: Int32, address: String, port: UInt16) -> Bool {
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        inet_pton(AF_INET, address, &socketAddress.sin_addr)
        return withUnsafePointer(to: &socketAddress) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// Sends `text` from the sender to the receiver; the kernel may discard it silently.
    func send(_ text: String) {
        var destination = sockaddr_in()
        destination.sin_family = sa_family_t(AF_INET)
        destination.sin_port = port.bigEndian
        inet_pton(AF_INET, receiverAddress, &destination.sin_addr)
        let bytes = Array(text.utf8)
        _ = withUnsafePointer(to: &destination) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bytes.withUnsafeBytes {
                    sendto(sender, $0.baseAddress, $0.count, 0, address, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// The first datagram queued at the receiver, or nil after the timeout.
    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { recv(receiver, $0.baseAddress, $0.count, 0) }
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
    }

    func close() {
        Glibc.close(sender)
        Glibc.close(receiver)
    }
}
