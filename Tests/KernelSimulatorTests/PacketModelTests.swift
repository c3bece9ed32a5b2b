import Kernel
import MeshwardCore
import Testing

@testable import KernelSimulator

/// One packet from a to b after some operations on each node.
struct PacketCase: Sendable, CustomTestStringConvertible {
    let name: String
    let setup: [Action]
    var transport: TransportProtocol = .udp
    var destinationPort: UInt16?
    let expected: PacketOutcome

    var testDescription: String { name }
}

@Suite("Packet model")
struct PacketModelTests {
    static let ab = Channel(from: "a", to: "b")
    static let g1 = Generation(0x101)
    static let g2 = Generation(0x102)
    static let tcp8080 = TrafficMatch(transport: .tcp, destinationPort: 8080)

    static func outbound(
        spi: Generation?, optional: Bool = false, traffic: TrafficMatch = .any,
        priority: UInt32 = SecurityPolicy.defaultPriority, reqid: Reqid = FleetValues.reqid
    ) -> Action {
        .apply(
            "a",
            .addPolicy(
                SecurityPolicy(
                    selector: PolicySelector(
                        source: IPPrefix(host: ab.source), destination: IPPrefix(host: ab.destination),
                        traffic: traffic),
                    direction: .outbound, priority: priority,
                    template: PolicyTemplate(family: .ipv4, spi: spi?.spi, reqid: reqid, isOptional: optional)
                )))
    }

    static func inbound(spi: Generation? = nil, optional: Bool = false) -> Action {
        .apply(
            "b",
            .addPolicy(
                SecurityPolicy(
                    selector: ab.selector, direction: .inbound,
                    template: PolicyTemplate(
                        family: .ipv4, spi: spi?.spi, reqid: FleetValues.reqid, isOptional: optional)
                )))
    }

    static let bothSAs = [ab.addOutboundSA(g1), ab.addInboundSA(g1), ab.addOutboundSA(g2), ab.addInboundSA(g2)]

    static let cases: [PacketCase] = [
        PacketCase(name: "no policy sends plaintext", setup: [], expected: .deliveredPlaintext),
        PacketCase(
            name: "a required template without an SA drops on the sender",
            setup: [outbound(spi: g1)], expected: .dropped(.outNoStates)),
        PacketCase(
            name: "an optional template without an SA sends plaintext",
            setup: [outbound(spi: nil, optional: true)], expected: .deliveredPlaintext),
        PacketCase(
            name: "an unpinned template takes the newest SA",
            setup: bothSAs + [outbound(spi: nil)], expected: .deliveredEncrypted(spi: g2.spi)),
        PacketCase(
            name: "a pinned template takes its SA even when a newer one exists",
            setup: bothSAs + [outbound(spi: g1)], expected: .deliveredEncrypted(spi: g1.spi)),
        PacketCase(
            name: "a template of another reqid finds no SA",
            setup: bothSAs + [outbound(spi: g1, reqid: FleetValues.foreignReqid)], expected: .dropped(.outNoStates)),
        PacketCase(
            name: "a port selector takes its port", setup: bothSAs + [outbound(spi: g1, traffic: tcp8080)],
            transport: .tcp, destinationPort: 8080, expected: .deliveredEncrypted(spi: g1.spi)),
        PacketCase(
            name: "a port selector leaves other ports alone", setup: bothSAs + [outbound(spi: g1, traffic: tcp8080)],
            transport: .tcp, destinationPort: 22, expected: .deliveredPlaintext),
        PacketCase(
            name: "a port selector leaves other protocols alone",
            setup: bothSAs + [outbound(spi: g1, traffic: tcp8080)], transport: .udp, destinationPort: 8080,
            expected: .deliveredPlaintext),
        PacketCase(
            name: "the lower priority value wins",
            setup: bothSAs + [outbound(spi: g1), outbound(spi: g2, traffic: tcp8080, priority: 10)],
            transport: .tcp, destinationPort: 8080, expected: .deliveredEncrypted(spi: g2.spi)),
        PacketCase(
            name: "on equal priorities the first inserted wins",
            setup: bothSAs + [outbound(spi: g1), outbound(spi: g2, traffic: tcp8080)],
            transport: .tcp, destinationPort: 8080, expected: .deliveredEncrypted(spi: g1.spi)),
        PacketCase(
            name: "ESP without an inbound policy is accepted",
            setup: bothSAs + [outbound(spi: g1)], expected: .deliveredEncrypted(spi: g1.spi)),
        PacketCase(
            name: "plaintext into a required inbound template is dropped",
            setup: [inbound()], expected: .dropped(.inTemplateMismatch)),
        PacketCase(
            name: "plaintext into an optional inbound template is accepted",
            setup: [inbound(optional: true)], expected: .deliveredPlaintext),
        PacketCase(
            name: "ESP into an optional inbound template is accepted",
            setup: bothSAs + [outbound(spi: g1), inbound(optional: true)], expected: .deliveredEncrypted(spi: g1.spi)),
        PacketCase(
            name: "an inbound template pinned to another SPI rejects the packet",
            setup: bothSAs + [outbound(spi: g1), inbound(spi: g2)], expected: .dropped(.inTemplateMismatch)),
        PacketCase(
            name: "ESP for an SPI the receiver lacks is dropped there",
            setup: [ab.addOutboundSA(g1), outbound(spi: g1)], expected: .dropped(.inNoStates)),
        PacketCase(
            name: "ESP through a foreign SA does not satisfy a required template",
            setup: [
                .apply(
                    "a",
                    .addSA(
                        SecurityAssociation(
                            source: ab.source, destination: ab.destination, spi: g1.spi,
                            reqid: FleetValues.foreignReqid, cipher: .aesGCM256, key: g1.key))),
                .apply(
                    "b",
                    .addSA(
                        SecurityAssociation(
                            source: ab.source, destination: ab.destination, spi: g1.spi,
                            reqid: FleetValues.foreignReqid, cipher: .aesGCM256, key: g1.key))),
                outbound(spi: g1, reqid: FleetValues.foreignReqid), inbound(),
            ],
            expected: .dropped(.inTemplateMismatch)
        ),
    ]

    @Test("one packet from a to b", arguments: cases)
    func packet(testCase: PacketCase) {
        var state = FleetValues.state(["a", "b"])
        for action in testCase.setup {
            // Raw kernel: foreign objects are installed as their own owner would.
            if case .apply(let node, let operation) = action {
                #expect(state.apply(operation, on: node) == .applied, "\(action)")
            }
        }
        let outcome = state.send(
            from: "a", to: Self.ab.destination, transport: testCase.transport,
            destinationPort: testCase.destinationPort)
        #expect(outcome == testCase.expected)
    }

    @Test("a packet in flight meets the receiver as it is on arrival: a deleted SA drops it")
    func packetInFlight() {
        var state = FleetValues.state(["a", "b"])
        for action in Self.ab.install(Self.g1) { _ = action.perform(on: &state) }
        state.currentTime = 100
        guard case .inFlight(let early) = state.transmit(from: "a", to: Self.ab.destination),
            case .inFlight(let late) = state.transmit(from: "a", to: Self.ab.destination)
        else {
            Issue.record("the packets did not leave a")
            return
        }
        #expect(early.spi == Self.g1.spi && early.receiver == "b" && early.sentAt == 100)
        // Delivered while b still holds the SA; then b deletes it under the second packet.
        #expect(state.deliver(early) == .deliveredEncrypted(spi: Self.g1.spi))
        #expect(Self.ab.deleteInboundSA(Self.g1).perform(on: &state) == .applied)
        let before = state.nodes["b"]?.statistics["XfrmInNoStates"] ?? 0
        #expect(state.deliver(late) == .dropped(.inNoStates))
        #expect(state.nodes["b"]?.statistics["XfrmInNoStates"] == before + 1)
        // A sender-side drop never leaves.
        #expect(Self.ab.switchOutboundPolicy(Self.g2).perform(on: &state) == .applied)
        #expect(state.transmit(from: "a", to: Self.ab.destination) == .ended(.dropped(.outNoStates)))
    }

    @Test("an address no node holds is undeliverable")
    func unknownDestination() {
        var state = FleetValues.state(["a", "b"])
        let outcome = state.send(from: "a", to: FleetValues.address("198.18.9.9"))
        guard case .undeliverable = outcome else {
            Issue.record("expected undeliverable, got \(outcome)")
            return
        }
        #expect(state.send(from: "nobody", to: Self.ab.destination).isDelivered == false)
    }

    @Test("SAs count packets and bytes on both sides, and observation reports them")
    func counters() throws {
        var state = FleetValues.state(["a", "b"])
        for action in Self.ab.install(Self.g1) { _ = action.perform(on: &state) }
        state.currentTime = 1_000
        for _ in 0..<5 { _ = state.send(from: "a", to: Self.ab.destination) }
        let sender = try state.observe(node: "a", reqid: FleetValues.reqid).securityAssociations
        let receiver = try state.observe(node: "b", reqid: FleetValues.reqid).securityAssociations
        #expect(sender.map(\.counters) == [SACounters(bytes: 500, packets: 5, addTime: 0, useTime: 1_000)])
        #expect(receiver.map(\.counters) == [SACounters(bytes: 500, packets: 5, addTime: 0, useTime: 1_000)])
    }

    @Test("a drop moves its counter on the node that drops")
    func dropCounters() throws {
        var state = FleetValues.state(["a", "b"])
        _ = state.apply(.addPolicy(Self.ab.outboundPolicy(Self.g1)), on: "a")
        _ = state.send(from: "a", to: Self.ab.destination)
        #expect(try state.observe(node: "a", reqid: FleetValues.reqid).statistics["XfrmOutNoStates"] == 1)
        #expect(try state.observe(node: "b", reqid: FleetValues.reqid).statistics["XfrmOutNoStates"] == 0)
    }

    @Test("a wipe removes foreign objects too, and resets the statistics")
    func wipe() {
        var state = FleetValues.state(["a", "b"])
        _ = state.apply(.addPolicy(Self.ab.outboundPolicy(Self.g1)), on: "a")
        _ = state.apply(
            .addSA(
                SecurityAssociation(
                    source: Self.ab.source, destination: Self.ab.destination,
                    spi: Self.g2.spi, reqid: FleetValues.foreignReqid, cipher: .aesGCM256,
                    key: Self.g2.key)), on: "a")
        _ = state.send(from: "a", to: Self.ab.destination)
        state.wipe(node: "a")
        #expect(state.nodes["a"]?.securityAssociations.isEmpty == true)
        #expect(state.nodes["a"]?.policies.isEmpty == true)
        #expect(state.nodes["a"]?.statistics.values.allSatisfy { $0 == 0 } == true)
        #expect(state.nodes["a"]?.addresses == [Self.ab.source])
    }

    @Test("addNode is idempotent and updates addresses; an address moves to its new holder")
    func addNode() {
        var state = FleetValues.state(["a", "b"])
        _ = state.apply(.addPolicy(Self.ab.outboundPolicy(Self.g1)), on: "a")
        let extra = FleetValues.address("2001:db8::a")
        state.addNode("a", addresses: [Self.ab.source, extra])
        #expect(state.nodes["a"]?.addresses == [Self.ab.source, extra])
        #expect(state.nodes["a"]?.policies.count == 1)
        #expect(state.node(holding: extra) == "a")
        state.addNode("c", addresses: [extra])
        #expect(state.node(holding: extra) == "c")
        #expect(state.nodes["a"]?.addresses == [Self.ab.source])
    }
}

/// One sequence of numbers arriving at an SA with a given window, and which are accepted.
struct ReplayCase: Sendable, CustomTestStringConvertible {
    let window: UInt32
    let sequences: [UInt64]
    let accepted: [Bool]

    var testDescription: String { "window \(window): \(sequences)" }
}

@Suite("Replay window")
struct ReplayWindowTests {
    static let cases: [ReplayCase] = [
        ReplayCase(window: 4, sequences: [1, 2, 3], accepted: [true, true, true]),
        ReplayCase(window: 4, sequences: [3, 1, 2], accepted: [true, true, true]),
        ReplayCase(window: 4, sequences: [1, 1], accepted: [true, false]),
        ReplayCase(window: 4, sequences: [5, 1], accepted: [true, false]),
        ReplayCase(window: 64, sequences: [100, 37, 36], accepted: [true, true, false]),
        ReplayCase(window: 128, sequences: [1, 100, 1], accepted: [true, true, false]),
        ReplayCase(window: 128, sequences: [1, 200, 1], accepted: [true, true, false]),
        ReplayCase(window: 128, sequences: [70, 1, 2, 2], accepted: [true, true, true, false]),
        ReplayCase(window: 128, sequences: [2, 70, 2, 3], accepted: [true, true, false, true]),
        ReplayCase(window: 128, sequences: [0], accepted: [false]),
        ReplayCase(window: 0, sequences: [1, 1, 0], accepted: [true, true, true]),
    ]

    @Test("fresh numbers pass, repeats and numbers below the window do not", arguments: cases)
    func replay(testCase: ReplayCase) {
        var window = ReplayWindow(size: testCase.window)
        let accepted = testCase.sequences.map { sequence in
            let fresh = window.admits(sequence)
            if fresh { window.record(sequence) }
            return fresh
        }
        #expect(accepted == testCase.accepted)
    }
}
