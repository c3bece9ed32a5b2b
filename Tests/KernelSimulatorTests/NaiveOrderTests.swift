import Kernel
import KernelSimulator
import MeshwardCore
import Testing

/// Orders the design forbids, with the drops the real kernel shows for each.
@Suite("Naive orders")
struct NaiveOrderTests {
    static let ab = Channel(from: "a", to: "b")
    static let ba = Channel(from: "b", to: "a")
    static let g1 = Generation(0x101)
    static let g2 = Generation(0x102)
    static let g2OtherKey = Generation(0x102, keyByte: 0xEE)
    static let g3 = Generation(0x103)
    static let established = ab.install(g1) + ba.install(g3)

    static let scenarios: [Scenario] = [
        Scenario(
            name: "delete-then-add of the outbound policy drops while required", nodes: ["a", "b"],
            setup: established,
            steps: [
                Step(action: ab.addInboundSA(g2), expected: both(encrypted(g1), encrypted(g3))),
                Step(action: ab.addOutboundSA(g2), expected: both(encrypted(g1), encrypted(g3))),
                Step(
                    action: ab.deleteOutboundPolicy,
                    expected: both(.dropped(.inTemplateMismatch), encrypted(g3))),
                Step(action: ab.addOutboundPolicy(g2), expected: both(encrypted(g2), encrypted(g3))),
            ]),
        Scenario(
            name: "delete-then-add of the outbound policy leaks plaintext while permissive", nodes: ["a", "b"],
            setup: [
                ab.addInboundSA(g1), ab.addInboundPolicy(required: false), ab.addOutboundSA(g1),
                ab.addOutboundPolicy(g1),
            ],
            steps: [
                Step(action: ab.addInboundSA(g2), expected: both(encrypted(g1), plaintext)),
                Step(action: ab.addOutboundSA(g2), expected: both(encrypted(g1), plaintext)),
                Step(action: ab.deleteOutboundPolicy, expected: both(plaintext, plaintext)),
                Step(action: ab.addOutboundPolicy(g2), expected: both(encrypted(g2), plaintext)),
            ]),
        Scenario(
            name: "switching the sender before the receiver has the new SA", nodes: ["a", "b"],
            setup: established,
            steps: [
                Step(action: ab.addOutboundSA(g2), expected: both(encrypted(g1), encrypted(g3))),
                Step(action: ab.switchOutboundPolicy(g2), expected: both(.dropped(.inNoStates), encrypted(g3))),
                Step(action: ab.addInboundSA(g2), expected: both(encrypted(g2), encrypted(g3))),
            ]),
        Scenario(
            name: "deleting the inbound SA before the sender switched", nodes: ["a", "b"],
            setup: established,
            steps: [
                Step(action: ab.addInboundSA(g2), expected: both(encrypted(g1), encrypted(g3))),
                Step(action: ab.deleteInboundSA(g1), expected: both(.dropped(.inNoStates), encrypted(g3))),
                Step(action: ab.addOutboundSA(g2), expected: both(.dropped(.inNoStates), encrypted(g3))),
                Step(action: ab.switchOutboundPolicy(g2), expected: both(encrypted(g2), encrypted(g3))),
            ]),
        Scenario(
            name: "a required outbound policy before its SA", nodes: ["a", "b"], setup: [],
            steps: [
                Step(action: ab.addOutboundPolicy(g1), expected: both(.dropped(.outNoStates), plaintext)),
                Step(action: ab.addOutboundSA(g1), expected: both(.dropped(.inNoStates), plaintext)),
                Step(action: ab.addInboundSA(g1), expected: both(encrypted(g1), plaintext)),
            ]),
        Scenario(
            name: "reinstalling old keys after the sender was re-imaged is a replay", nodes: ["a", "b"],
            setup: established,
            steps: [
                Step(
                    action: .wipe("a"),
                    expected: both(.dropped(.inTemplateMismatch), .dropped(.inNoStates))),
                Step(
                    action: ab.addOutboundSA(g1),
                    expected: both(.dropped(.inTemplateMismatch), .dropped(.inNoStates))),
                Step(
                    action: ab.addOutboundPolicy(g1),
                    expected: both(.dropped(.inStateSequenceError), .dropped(.inNoStates))),
                Step(
                    action: ba.addInboundSA(g3),
                    expected: both(.dropped(.inStateSequenceError), encrypted(g3))),
            ]),
        Scenario(
            name: "reinstalling old keys on a re-imaged receiver is accepted there", nodes: ["a", "b"],
            setup: established,
            steps: [
                Step(
                    action: .wipe("b"),
                    expected: both(.dropped(.inNoStates), .dropped(.inTemplateMismatch))),
                Step(
                    action: ab.addInboundSA(g1),
                    expected: both(encrypted(g1), .dropped(.inTemplateMismatch))),
            ]),
        Scenario(
            name: "a receiver with another key for the SPI", nodes: ["a", "b"],
            setup: established,
            steps: [
                Step(action: ab.addInboundSA(g2OtherKey), expected: both(encrypted(g1), encrypted(g3))),
                Step(action: ab.addOutboundSA(g2), expected: both(encrypted(g1), encrypted(g3))),
                Step(
                    action: ab.switchOutboundPolicy(g2),
                    expected: both(.dropped(.inStateProtoError), encrypted(g3))),
            ]),
    ]

    @Test("each naive order drops as the kernel does", arguments: scenarios)
    func naiveOrder(scenario: Scenario) {
        scenario.run()
    }
}
