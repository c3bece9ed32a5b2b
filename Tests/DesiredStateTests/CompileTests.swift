import MeshwardCore
import Testing

@testable import DesiredState

@Suite("Compiling flows into channels")
struct CompileTests {
    private static let dualStack =
        SpecTesting.header + """
            nodes:
              - name: web-1
                addresses: ["2001:db8::10", 198.18.1.10]
                labels: { tier: web }
              - name: app-1
                addresses: [198.18.2.10, "2001:db8::20"]
                labels: { tier: app }
              - name: db-1
                addresses: [198.18.3.10]
                labels: { tier: db }

            """

    private func compile(_ text: String) throws -> FleetIntent {
        let result = SpecTesting.load(text)
        return try #require(result.intent, "\(result.diagnostics.map(\.description))")
    }

    @Test("a flow gives a forward channel with destination ports and a return channel with source ports")
    func returnTraffic() throws {
        let intent = try compile(
            Self.dualStack + """
                flows:
                  - name: web-to-app
                    from: { tier: web }
                    to: { tier: app }
                    ports: [tcp/8080, udp/53]
                """)
        let forward = try #require(intent.channel(ChannelID(from: "web-1", to: "app-1", family: .ipv4)))
        #expect(
            forward.traffic == [
                TrafficMatch(transport: .tcp, destinationPort: 8080),
                TrafficMatch(transport: .udp, destinationPort: 53),
            ])
        #expect(forward.source == IPAddress("198.18.1.10"))
        #expect(forward.destination == IPAddress("198.18.2.10"))
        let back = try #require(intent.channel(ChannelID(from: "app-1", to: "web-1", family: .ipv4)))
        #expect(
            back.traffic == [
                TrafficMatch(transport: .tcp, sourcePort: 8080),
                TrafficMatch(transport: .udp, sourcePort: 53),
            ])
        #expect(back.flows == ["web-to-app"])
    }

    @Test("each family both nodes have gives its own pair of channels")
    func families() throws {
        let intent = try compile(
            Self.dualStack + """
                flows:
                  - name: all
                    from: {}
                    to: {}
                """)
        #expect(
            intent.channels.map(\.id.description) == [
                "app-1->db-1/ipv4", "app-1->web-1/ipv4", "app-1->web-1/ipv6",
                "db-1->app-1/ipv4", "db-1->web-1/ipv4",
                "web-1->app-1/ipv4", "web-1->app-1/ipv6", "web-1->db-1/ipv4",
            ])
        #expect(intent.channels.allSatisfy { $0.traffic == [.any] })
        #expect(intent.node(named: "web-1")?.addresses.map(\.description) == ["198.18.1.10", "2001:db8::10"])
        #expect(intent.node(named: "db-1")?.address(for: .ipv6) == nil)
        #expect(intent.node(named: "nope") == nil)
    }

    @Test("icmp travels only over IPv4 and icmpv6 only over IPv6")
    func icmpFamilies() throws {
        let intent = try compile(
            Self.dualStack + """
                flows:
                  - name: ping
                    from: { tier: web }
                    to: { tier: app }
                    ports: [icmp]
                  - name: ping6
                    from: { tier: web }
                    to: { tier: db }
                    ports: [icmpv6]
                """)
        #expect(intent.channels.map(\.id.description) == ["app-1->web-1/ipv4", "web-1->app-1/ipv4"])
        #expect(intent.channels.allSatisfy { $0.traffic == [TrafficMatch(transport: .icmp)] })
    }

    @Test("traffic of several flows on one channel is unioned, deduplicated and reduced")
    func union() throws {
        let intent = try compile(
            Self.dualStack + """
                flows:
                  - name: a
                    from: { tier: web }
                    to: { tier: app }
                    ports: [tcp/443, tcp/80, tcp/443, udp/53]
                  - name: b
                    from: { name: web-1 }
                    to: { name: app-1 }
                    ports: [udp, tcp/80]
                  - name: c
                    from: { tier: app }
                    to: { tier: web }
                    ports: [sctp/9000]
                """)
        let forward = try #require(intent.channel(ChannelID(from: "web-1", to: "app-1", family: .ipv6)))
        #expect(
            forward.traffic == [
                TrafficMatch(transport: .tcp, destinationPort: 80),
                TrafficMatch(transport: .tcp, destinationPort: 443),
                TrafficMatch(transport: .udp),
                TrafficMatch(transport: .sctp, sourcePort: 9000),
            ])
        #expect(forward.flows == ["a", "b", "c"])
        let back = try #require(intent.channel(ChannelID(from: "app-1", to: "web-1", family: .ipv6)))
        #expect(
            back.traffic == [
                TrafficMatch(transport: .tcp, sourcePort: 80),
                TrafficMatch(transport: .tcp, sourcePort: 443),
                TrafficMatch(transport: .udp),
                TrafficMatch(transport: .sctp, destinationPort: 9000),
            ])
    }

    @Test("a flow without ports makes its channels carry all traffic")
    func anyWins() throws {
        let intent = try compile(
            Self.dualStack + """
                flows:
                  - name: narrow
                    from: { tier: web }
                    to: { tier: app }
                    ports: [tcp/80]
                  - name: wide
                    from: { tier: app }
                    to: { tier: web }
                """)
        #expect(intent.channels.count == 4)
        #expect(intent.channels.allSatisfy { $0.traffic == [.any] && $0.flows == ["narrow", "wide"] })
    }

    @Test("selectors that overlap skip a node's pair with itself")
    func overlapSkipsSelf() throws {
        let intent = try compile(
            Self.dualStack + """
                flows:
                  - name: mesh
                    from: { tier: web }
                    to: {}
                """)
        #expect(!intent.channels.contains { $0.id.from == $0.id.to })
        #expect(intent.channels.count == 6)
    }

    @Test("defaults and overrides reach every channel and node")
    func defaults() throws {
        let intent = try compile(
            """
            version: 1
            cluster: c
            reqid: 0x1234
            defaults:
              cipher: aes-gcm-128
              rekey: { every: 1h30m, packets: 1_000 }
              drain: 500ms
              enforcement: permissive
              endpoint: local
            nodes:
              - name: a
                addresses: [198.18.0.1]
                endpoint: netns:a
              - name: b
                addresses: [198.18.0.2]
            flows:
              - name: f
                from: { name: a }
                to: { name: b }
                cipher: chacha20-poly1305
              - name: g
                from: { name: b }
                to: { name: a }
                ports: [tcp/1]
                cipher: chacha20-poly1305
            """)
        #expect(intent.reqid == 0x1234)
        #expect(intent.node(named: "a")?.endpoint == .namespace("a"))
        #expect(intent.node(named: "b")?.endpoint == .local)
        for channel in intent.channels {
            #expect(channel.cipher == .chacha20Poly1305)
            #expect(channel.rekey == RekeyPolicy(every: .seconds(5400), packets: 1000))
            #expect(channel.drain == .milliseconds(500))
            #expect(channel.enforcement == .permissive)
        }
    }

    @Test("without defaults: aes-gcm-256, 24h, 5s, required, sim, reqid 0x4d57")
    func builtInDefaults() throws {
        let intent = try compile(
            SpecTesting.header + """
                nodes:
                  - name: a
                    addresses: [198.18.0.1]
                  - name: b
                    addresses: [198.18.0.2]
                flows:
                  - name: f
                    from: { name: a }
                    to: { name: b }
                """)
        #expect(intent.reqid == 0x4d57)
        #expect(intent.flowCount == 1)
        #expect(intent.node(named: "a")?.endpoint == .sim)
        let channel = try #require(intent.channels.first)
        #expect(channel.cipher == .aesGCM256)
        #expect(channel.rekey == RekeyPolicy(every: .seconds(86_400)))
        #expect(channel.drain == .seconds(5))
        #expect(channel.enforcement == .required)
    }

    @Test("a flow's cipher may differ from the default where no other flow disagrees")
    func cipherOverrideWithoutConflict() throws {
        let intent = try compile(
            Self.dualStack + """
                flows:
                  - name: f
                    from: { tier: web }
                    to: { tier: app }
                    cipher: aes-cbc-hmac-sha256
                  - name: g
                    from: { tier: app }
                    to: { tier: db }
                """)
        #expect(intent.channel(ChannelID(from: "web-1", to: "app-1", family: .ipv4))?.cipher == .aesCBCHMACSHA256)
        #expect(intent.channel(ChannelID(from: "app-1", to: "db-1", family: .ipv4))?.cipher == .aesGCM256)
    }

    @Test("the revision changes with the intent and is stable for the same intent")
    func revision() throws {
        let base = SpecTesting.header + "nodes:\n  - name: a\n    addresses: [198.18.0.1]\n"
        let first = try compile(base)
        let again = try compile(base)
        let changed = try compile(base.replacingOccurrences(of: "198.18.0.1", with: "198.18.0.2"))
        #expect(first.revision == again.revision)
        #expect(first.revision != changed.revision)
        #expect(first.revision.count == 64)
        #expect(first.revision.allSatisfy { $0.isHexDigit && !$0.isUppercase })
    }
}

@Suite("Durations and ports")
struct ValueParsingTests {
    @Test(
        "valid durations",
        arguments: [
            ("90s", Duration.seconds(90)), ("5m", .seconds(300)), ("24h", .seconds(86_400)), ("7d", .seconds(604_800)),
            ("1h30m", .seconds(5400)), ("1d2h3m4s", .seconds(93_784)), ("250ms", .milliseconds(250)), ("0s", .zero),
        ])
    func durations(text: String, expected: Duration) throws {
        #expect(try SpecDuration.parse(text).get() == expected)
        #expect(try SpecDuration.parse(SpecDuration.format(expected)).get() == expected)
    }

    @Test(
        "invalid durations", arguments: ["", "5x", "-5s", "5", "h", "1h1h", "30m1h", "1.5h", "5 s", "99999999999999d"])
    func invalidDurations(text: String) {
        #expect(throws: DurationError.self) { try SpecDuration.parse(text).get() }
    }

    @Test(
        "valid ports",
        arguments: [
            ("tcp/8080", TrafficMatch(transport: .tcp, destinationPort: 8080)),
            ("udp/53", TrafficMatch(transport: .udp, destinationPort: 53)),
            ("sctp/9000", TrafficMatch(transport: .sctp, destinationPort: 9000)),
            ("tcp", TrafficMatch(transport: .tcp)), ("icmp", TrafficMatch(transport: .icmp)),
            ("icmpv6", TrafficMatch(transport: .icmpv6)),
            ("udp/65535", TrafficMatch(transport: .udp, destinationPort: 65535)),
        ])
    func ports(text: String, expected: TrafficMatch) throws {
        #expect(try PortSpec.parse(text).get() == expected)
    }

    @Test(
        "invalid ports",
        arguments: [
            "tcp/70000", "sctp/ab", "ftp/21", "icmp/8", "tcp/", "tcp/0", "TCP/80", "tcp/+80",
            "tcp/1-2", "udp/0080000",
        ])
    func invalidPorts(text: String) {
        #expect(throws: PortSpecError.self) { try PortSpec.parse(text).get() }
    }
}
