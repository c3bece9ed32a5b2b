import Kernel
import KernelSimulator
import MeshwardCore
import Testing

/// The staged orders of design section 4, checked after every single operation: nothing is
/// ever dropped, and once the inbound policy is required, nothing travels in plaintext.
@Suite("Staged orders")
struct StagedOrderTests {
    static let ab = Channel(from: "a", to: "b")
    static let ba = Channel(from: "b", to: "a")
    static let ac = Channel(from: "a", to: "c")
    static let ca = Channel(from: "c", to: "a")
    static let g1 = Generation(0x101)
    static let g2 = Generation(0x102)
    static let g3 = Generation(0x103)
    static let g4 = Generation(0x104)

    static let scenarios: [Scenario] = [
        Scenario(
            name: "new channel a->b, enforcement required", nodes: ["a", "b"], setup: [],
            steps: [
                Step(action: ab.addInboundSA(g1), expected: both(plaintext, plaintext)),
                Step(action: ab.addInboundPolicy(required: false), expected: both(plaintext, plaintext)),
                Step(action: ab.addOutboundSA(g1), expected: both(plaintext, plaintext)),
                Step(action: ab.addOutboundPolicy(g1), expected: both(encrypted(g1), plaintext)),
                Step(action: ab.setInboundPolicy(required: true), expected: both(encrypted(g1), plaintext)),
            ]),
        Scenario(
            name: "new channel a->b, permissive", nodes: ["a", "b"], setup: [],
            steps: [
                Step(action: ab.addInboundSA(g1), expected: both(plaintext, plaintext)),
                Step(action: ab.addInboundPolicy(required: false), expected: both(plaintext, plaintext)),
                Step(action: ab.addOutboundSA(g1), expected: both(plaintext, plaintext)),
                Step(action: ab.addOutboundPolicy(g1), expected: both(encrypted(g1), plaintext)),
            ]),
        Scenario(
            name: "new channel b->a beside an established a->b", nodes: ["a", "b"], setup: ab.install(g1),
            steps: [
                Step(action: ba.addInboundSA(g3), expected: both(encrypted(g1), plaintext)),
                Step(action: ba.addInboundPolicy(required: false), expected: both(encrypted(g1), plaintext)),
                Step(action: ba.addOutboundSA(g3), expected: both(encrypted(g1), plaintext)),
                Step(action: ba.addOutboundPolicy(g3), expected: both(encrypted(g1), encrypted(g3))),
                Step(action: ba.setInboundPolicy(required: true), expected: both(encrypted(g1), encrypted(g3))),
            ]),
        Scenario(
            name: "rekey a->b from g1 to g2", nodes: ["a", "b"], setup: ab.install(g1) + ba.install(g3),
            steps: [
                Step(action: ab.addInboundSA(g2), expected: both(encrypted(g1), encrypted(g3))),
                Step(action: ab.addOutboundSA(g2), expected: both(encrypted(g1), encrypted(g3))),
                Step(action: ab.switchOutboundPolicy(g2), expected: both(encrypted(g2), encrypted(g3))),
                Step(action: ab.deleteOutboundSA(g1), expected: both(encrypted(g2), encrypted(g3))),
                Step(action: ab.deleteInboundSA(g1), expected: both(encrypted(g2), encrypted(g3))),
            ]),
        Scenario(
            name: "two rekeys in a row", nodes: ["a", "b"], setup: ab.install(g1) + ba.install(g3),
            steps: [
                Step(action: ab.addInboundSA(g2), expected: both(encrypted(g1), encrypted(g3))),
                Step(action: ab.addOutboundSA(g2), expected: both(encrypted(g1), encrypted(g3))),
                Step(action: ab.switchOutboundPolicy(g2), expected: both(encrypted(g2), encrypted(g3))),
                Step(action: ab.deleteOutboundSA(g1), expected: both(encrypted(g2), encrypted(g3))),
                Step(action: ab.deleteInboundSA(g1), expected: both(encrypted(g2), encrypted(g3))),
                Step(action: ab.addInboundSA(g4), expected: both(encrypted(g2), encrypted(g3))),
                Step(action: ab.addOutboundSA(g4), expected: both(encrypted(g2), encrypted(g3))),
                Step(action: ab.switchOutboundPolicy(g4), expected: both(encrypted(g4), encrypted(g3))),
                Step(action: ab.deleteOutboundSA(g2), expected: both(encrypted(g4), encrypted(g3))),
                Step(action: ab.deleteInboundSA(g2), expected: both(encrypted(g4), encrypted(g3))),
            ]),
        Scenario(
            name: "removal of a->b", nodes: ["a", "b"], setup: ab.install(g1) + ba.install(g3),
            steps: [
                Step(action: ab.setInboundPolicy(required: false), expected: both(encrypted(g1), encrypted(g3))),
                Step(action: ab.deleteOutboundPolicy, expected: both(plaintext, encrypted(g3))),
                Step(action: ab.deleteOutboundSA(g1), expected: both(plaintext, encrypted(g3))),
                Step(action: ab.deleteInboundPolicy, expected: both(plaintext, encrypted(g3))),
                Step(action: ab.deleteInboundSA(g1), expected: both(plaintext, encrypted(g3))),
            ]),
        Scenario(
            name: "rekey a->b in a three-node fleet leaves a<->c alone", nodes: ["a", "b", "c"],
            setup: ab.install(g1) + ac.install(g3) + ca.install(g4),
            steps: [
                Step(
                    action: ab.addInboundSA(g2),
                    expected: [
                        .ab: encrypted(g1), .ba: plaintext, .ac: encrypted(g3), .ca: encrypted(g4),
                        .bc: plaintext, .cb: plaintext,
                    ]),
                Step(
                    action: ab.addOutboundSA(g2),
                    expected: [.ab: encrypted(g1), .ac: encrypted(g3), .ca: encrypted(g4), .bc: plaintext]),
                Step(
                    action: ab.switchOutboundPolicy(g2),
                    expected: [.ab: encrypted(g2), .ac: encrypted(g3), .ca: encrypted(g4), .bc: plaintext]),
                Step(
                    action: ab.deleteOutboundSA(g1),
                    expected: [.ab: encrypted(g2), .ac: encrypted(g3), .ca: encrypted(g4), .cb: plaintext]),
                Step(
                    action: ab.deleteInboundSA(g1),
                    expected: [
                        .ab: encrypted(g2), .ba: plaintext, .ac: encrypted(g3), .ca: encrypted(g4),
                        .bc: plaintext, .cb: plaintext,
                    ]),
            ]
        ),
        Scenario(
            name: "node c joins a<->b: new channel a->c", nodes: ["a", "b", "c"],
            setup: ab.install(g1) + ba.install(g2),
            steps: [
                Step(action: ac.addInboundSA(g3), expected: [.ab: encrypted(g1), .ba: encrypted(g2), .ac: plaintext]),
                Step(
                    action: ac.addInboundPolicy(required: false),
                    expected: [.ab: encrypted(g1), .ba: encrypted(g2), .ac: plaintext]),
                Step(action: ac.addOutboundSA(g3), expected: [.ab: encrypted(g1), .ba: encrypted(g2), .ac: plaintext]),
                Step(
                    action: ac.addOutboundPolicy(g3),
                    expected: [.ab: encrypted(g1), .ba: encrypted(g2), .ac: encrypted(g3), .ca: plaintext]),
                Step(
                    action: ac.setInboundPolicy(required: true),
                    expected: [.ab: encrypted(g1), .ba: encrypted(g2), .ac: encrypted(g3), .ca: plaintext]),
            ]
        ),
    ]

    @Test("after every operation, every probe is delivered as expected", arguments: scenarios)
    func stagedOrder(scenario: Scenario) {
        scenario.run()
    }
}
