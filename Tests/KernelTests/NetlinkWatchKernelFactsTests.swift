import Foundation
import MeshwardCore
import MeshwardTestSupport
import Testing

@testable import Kernel

#if canImport(Glibc)
import Glibc
#endif

/// Which XFRM multicast events each kind of change produces on this kernel, and what they
/// carry, recorded by a second subscribed socket; and, after each change, that the watch's
/// model equals a fresh dump. Needs ESP SAs, so it runs in the real-kernel suite's boots
/// (`scripts/kernel-suite`); each event is printed as a `WATCH-FACT` line for docs/kernel-suite.md.
@Suite(
    "NetlinkKernel's watch: the events of each change on a kernel with ESP", .serialized,
    .enabled("needs root, network namespaces and a kernel with ESP") {
        guard await TestNamespace.isPermitted() else { return false }
        return await NetlinkKernelFixture.make().missingSASupport == nil
    })
struct NetlinkWatchKernelFactsTests {
    /// One change and the events it produced.
    struct Step {
        var name: String
        var events: [String]
    }

    @Test("each change's events are recorded, and after each the watch's model equals a fresh dump")
    func eventsOfEachChange() async throws {
        try await TestNamespace.with { namespace in
            let kernel = try NetlinkKernel(
                node: "facts", endpoint: .namespace(namespace.name), reqid: Fixtures.reqid, logger: Fixtures.logger)
            let reader = try NetlinkKernel(
                node: "facts-dump", endpoint: .namespace(namespace.name), reqid: Fixtures.reqid,
                logger: Fixtures.logger)
            let recorder = try NetlinkEventSocket(namespacePath: "/var/run/netns/\(namespace.name)")
            let model = try await kernel.startWatching()
            let stream = try #require(kernel.watch(from: model.position))
            let sa = Fixtures.sa(.ipv4, cipher: .aesGCM256, esn: false, window: 32, spi: SPI(0x4242))
            let key = NetlinkKernelFixture.hex(try #require(sa.key.material).bytes)
            let saArguments = [
                "src", "\(sa.source)", "dst", "\(sa.destination)", "proto", "esp", "reqid",
                "\(Fixtures.reqid.rawValue)",
                "mode", "transport", "replay-window", "32", "aead", "rfc4106(gcm(aes))", key, "128",
            ]
            let policy = Fixtures.policy(.ipv4, 1, spi: SPI(0x4242))
            var switched = policy
            switched.template.spi = SPI(0x4243)
            var fenceIndex = 0
            var steps: [Step] = []

            /// Runs `change`, then waits until both the recorder and the model have seen a
            /// fence (an owned policy added after it), and compares the model with a dump.
            func step(
                _ name: String, untilEvent isLast: ((NetlinkMessage) -> Bool)? = nil, _ change: () async throws -> Void
            )
                async throws
            {
                try await change()
                var events: [String] = []
                if let isLast {
                    events += try Self.record(recorder, until: isLast)
                }
                fenceIndex += 1
                let fence = Self.fence(fenceIndex)
                #expect(try await kernel.apply([.addPolicy(fence)]).allSatisfy(\.outcome.isApplied))
                events += try Self.record(recorder) { message in
                    message.header.type == XfrmCodec.newPolicy
                        && (try? XfrmCodec.decodePolicy(message.payload).identifier) == fence.identifier
                }
                _ = try await stream.prefix(
                    through: { message in
                        if case .change(_, .policy(let upserted)) = message {
                            upserted.identifier == fence.identifier
                        } else {
                            false
                        }
                    }, within: .seconds(20))
                let fresh = try await reader.observe()
                #expect(
                    model.objects
                        == WatchedObjects(securityAssociations: fresh.securityAssociations, policies: fresh.policies),
                    "after \(name)")
                for event in events {
                    print(
                        "WATCH-FACT \(Self.kernelRelease) step=\(name.replacingOccurrences(of: " ", with: "-")) \(event)"
                    )
                }
                steps.append(Step(name: name, events: events))
                #expect(!events.isEmpty, "\(name) produced no event")
            }

            try await step("SA add") { _ = try await kernel.apply([.addSA(sa)]) }
            try await step("SA update (ip xfrm state update)") {
                try await namespace.ip(["xfrm", "state", "update", "spi", "0x4242"] + saArguments)
            }
            try await step("SA delete") { _ = try await kernel.apply([.deleteSA(sa.identifier)]) }
            try await step("policy add") { _ = try await kernel.apply([.addPolicy(policy)]) }
            try await step("policy update") { _ = try await kernel.apply([.updatePolicy(switched)]) }
            try await step("policy delete") { _ = try await kernel.apply([.deletePolicy(policy.identifier)]) }
            try await step("SA delete by hand") {
                _ = try await kernel.apply([.addSA(sa)])
                try await namespace.ip(
                    "xfrm", "state", "delete", "src", "\(sa.source)", "dst", "\(sa.destination)", "proto", "esp", "spi",
                    "0x4242")
            }
            try await step("SA flush") {
                _ = try await kernel.apply([.addSA(sa)])
                try await namespace.ip("xfrm", "state", "flush")
            }
            try await step("policy flush") {
                _ = try await kernel.apply([.addPolicy(policy)])
                try await namespace.ip("xfrm", "policy", "flush")
            }
            try await step(
                "SA expiry (time-soft 1 s, time-hard 2 s)",
                untilEvent: { message in
                    message.header.type == XfrmCodec.expire
                        && (try? message.payload.uint8(XfrmCodec.usersaInfoSize, "hard")) == 1
                }
            ) {
                try await namespace.ip(
                    ["xfrm", "state", "add", "spi", "0x4343"] + saArguments + [
                        "limit", "time-soft", "1", "limit", "time-hard", "2",
                    ])
            }
            #expect(model.objects.securityAssociations.isEmpty)
            await kernel.close()
        }
    }

    static let kernelRelease: String = {
        var name = utsname()
        uname(&name)
        return withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }()

    /// An owned outbound policy to 198.18.3.`index`, which only marks a point in the events.
    static func fence(_ index: Int) -> SecurityPolicy {
        SecurityPolicy(
            selector: PolicySelector(
                source: IPPrefix(host: Fixtures.address("198.18.0.1")),
                destination: IPPrefix(host: Fixtures.address("198.18.3.\(index)"))),
            direction: .outbound,
            template: PolicyTemplate(
                family: .ipv4, spi: SPI(0x3000 + UInt32(index)), reqid: Fixtures.reqid, isOptional: false))
    }

    /// Describes every event the recorder receives until `isLast` holds for one (within 20
    /// seconds); fence policies are left out.
    static func record(_ recorder: NetlinkEventSocket, until isLast: (NetlinkMessage) -> Bool) throws -> [String] {
        let deadline = ContinuousClock.now + .seconds(20)
        var described: [String] = []
        while ContinuousClock.now < deadline {
            guard let messages = try recorder.receiveQueued() else {
                var descriptor = pollfd(fd: recorder.descriptor, events: Int16(POLLIN), revents: 0)
                _ = poll(&descriptor, 1, 200)
                continue
            }
            for message in messages {
                let last = isLast(message)
                if !isFence(message) { described.append(describe(message)) }
                if last { return described }
            }
        }
        throw StreamReadingTimeout(limit: .seconds(20), wanted: nil)
    }

    static func isFence(_ message: NetlinkMessage) -> Bool {
        guard message.header.type == XfrmCodec.newPolicy, let record = try? XfrmCodec.decodePolicy(message.payload)
        else { return false }
        return record.selector.map { "\($0.destination)".hasPrefix("198.18.3.") } ?? false
    }

    static let typeNames: [UInt16: (name: String, header: String, size: Int)] = [
        16: ("XFRM_MSG_NEWSA", "xfrm_usersa_info", 224), 17: ("XFRM_MSG_DELSA", "xfrm_usersa_id", 24),
        19: ("XFRM_MSG_NEWPOLICY", "xfrm_userpolicy_info", 168),
        20: ("XFRM_MSG_DELPOLICY", "xfrm_userpolicy_id", 64), 24: ("XFRM_MSG_EXPIRE", "xfrm_user_expire", 232),
        25: ("XFRM_MSG_UPDPOLICY", "xfrm_userpolicy_info", 168), 26: ("XFRM_MSG_UPDSA", "xfrm_usersa_info", 224),
        27: ("XFRM_MSG_POLEXPIRE", "xfrm_user_polexpire", 176), 28: ("XFRM_MSG_FLUSHSA", "xfrm_usersa_flush", 4),
        29: ("XFRM_MSG_FLUSHPOLICY", "-", 0),
    ]

    static let attributeNames: [UInt16: String] = [
        1: "ALG_AUTH", 2: "ALG_CRYPT", 5: "TMPL", 6: "SA", 7: "POLICY", 9: "LTIME_VAL", 10: "REPLAY_VAL",
        15: "LASTUSED", 16: "POLICY_TYPE", 18: "ALG_AEAD", 20: "ALG_AUTH_TRUNC", 21: "MARK", 23: "REPLAY_ESN_VAL",
        24: "SA_EXTRA_FLAGS", 27: "PAD", 31: "IF_ID", 33: "SA_DIR",
    ]

    /// `NAME header=STRUCT(SIZE) attrs=[...]`, with `hard` for an expiry and `proto` for a flush.
    static func describe(_ message: NetlinkMessage) -> String {
        let type = message.header.type
        guard let known = typeNames[type] else { return "type=\(type) length=\(message.payload.count)" }
        var text = "\(known.name) payload=\(message.payload.count) header=\(known.header)(\(known.size))"
        if let region = try? message.payload.tail(from: min(known.size, message.payload.count), context: "attrs"),
            let attributes = try? NetlinkAttributes(region)
        {
            let names = attributes.values.keys.sorted().map { attributeNames[$0] ?? "\($0)" }
            text += " attrs=[\(names.joined(separator: ","))]"
        }
        if type == XfrmCodec.expire || type == XfrmCodec.policyExpire {
            let offset = type == XfrmCodec.expire ? XfrmCodec.usersaInfoSize : XfrmCodec.userpolicyInfoSize
            text += " hard=\((try? message.payload.uint8(offset, "hard")).map(String.init) ?? "?")"
        }
        if type == XfrmCodec.flushSA {
            text += " proto=\((try? message.payload.uint8(0, "proto")).map(String.init) ?? "?")"
        }
        return text
    }
}
