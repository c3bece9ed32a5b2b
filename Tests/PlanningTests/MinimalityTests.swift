import Foundation
import Kernel
import KernelSimulator
import MeshwardCore
import MeshwardTestSupport
import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

/// The diff is minimal: one operation per object that differs, and applying it yields the
/// desired state.
@Suite("Minimality")
struct MinimalityTests {
    /// Random observed/desired pairs for one node: the diff's size equals the number of
    /// differing objects, and applying it to the observed objects gives the desired ones.
    @Test("the node diff has one operation per differing object", arguments: [UInt64(5), 6, 7, 8, 9])
    func nodeDiff(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        for _ in 0..<50 {
            let universeSAs = (0..<12).map { Self.sa(spi: UInt32(0x1000 + $0), keyByte: 1) }
            let universePolicies = (0..<12).map { Self.policy(port: UInt16(1000 + $0), spi: 0x1000, optional: false) }
            let desiredSAs = universeSAs.filter { _ in random.next() % 2 == 0 }
            let desiredPolicies = universePolicies.filter { _ in random.next() % 2 == 0 }
            var observedSAs = universeSAs.filter { _ in random.next() % 2 == 0 }
            var observedPolicies = universePolicies.filter { _ in random.next() % 2 == 0 }
            // Some observed objects differ in place: another key, another level.
            for index in observedSAs.indices where random.next() % 5 == 0 {
                observedSAs[index] = Self.sa(spi: observedSAs[index].spi.rawValue, keyByte: 2)
            }
            for index in observedPolicies.indices where random.next() % 5 == 0 {
                observedPolicies[index].template.isOptional.toggle()
            }
            let observation = NodeObservation(securityAssociations: observedSAs, policies: observedPolicies)
            let operations = NodeDiff.operations(
                observed: observation, desiredSAs: desiredSAs, desiredPolicies: desiredPolicies)

            let wantedSAs = Set(desiredSAs.map(\.identifier))
            let wantedPolicies = Dictionary(uniqueKeysWithValues: desiredPolicies.map { ($0.identifier, $0) })
            let differing =
                observedSAs.filter { sa in
                    !wantedSAs.contains(sa.identifier)
                        || desiredSAs.contains { $0.identifier == sa.identifier && !$0.hasSameConfiguration(as: sa) }
                }.count + desiredSAs.filter { sa in !observedSAs.contains { $0.identifier == sa.identifier } }.count
                + observedPolicies.filter { policy in
                    wantedPolicies[policy.identifier].map { !$0.hasSameConfiguration(as: policy) } ?? true
                }.count
                + desiredPolicies.filter { policy in !observedPolicies.contains { $0.identifier == policy.identifier } }
                .count
            #expect(operations.count == differing)

            // Apply to a simulated node: SAs that differ are deleted here and added back with
            // the next diff, the way the reconciler replaces them with a new generation.
            var state = SimulatedFleetState()
            state.addNode("n", addresses: [Self.local])
            for sa in observedSAs { _ = state.apply(.addSA(sa), on: "n") }
            for policy in observedPolicies { _ = state.apply(.addPolicy(policy), on: "n") }
            for operation in operations { #expect(state.apply(operation, on: "n") == .applied, "\(operation)") }
            let second = NodeDiff.operations(
                observed: try state.observe(node: "n", reqid: .meshwardDefault), desiredSAs: desiredSAs,
                desiredPolicies: desiredPolicies)
            for operation in second { _ = state.apply(operation, on: "n") }
            let final = try state.observe(node: "n", reqid: .meshwardDefault)
            #expect(Set(final.securityAssociations.map(\.identifier)) == wantedSAs)
            #expect(Set(final.policies.map(\.identifier)) == Set(wantedPolicies.keys))
            #expect(
                NodeDiff.operations(observed: final, desiredSAs: desiredSAs, desiredPolicies: desiredPolicies)
                    .isEmpty)
        }
    }

    /// On a converged fleet with random drift (stale objects for addresses no node has, policies
    /// with another priority), the reconciler's operations are exactly the node diff's, and
    /// their number is the number of drifted objects.
    @Test("the reconciler fixes drift with one operation per drifted object", arguments: [UInt64(1), 2, 3])
    func reconcilerIsMinimal(seed: UInt64) async throws {
        var random = SeededRandom(seed: seed)
        let harness = ContinuityHarness(seed: seed)
        let intent = try FleetSpec.threeTier.compile()
        try await harness.converge(intent)
        let nodes = intent.nodes.map(\.name)
        let converged = Dictionary(
            uniqueKeysWithValues: try nodes.map { node in
                (node, try harness.fleet.state.observe(node: node, reqid: harness.reqid))
            })

        var drift = 0
        for node in nodes {
            for extra in 0..<(Int(random.next() % 3) + (node == nodes.first ? 1 : 0)) {
                let gone = IPAddress("198.19.9.\(extra + 1)")!
                let stale = SecurityAssociation(
                    source: gone, destination: converged[node]!.securityAssociations.first!.destination,
                    spi: SPI(0x7000 + UInt32(extra) + UInt32(random.next() % 1000) * 8), reqid: harness.reqid,
                    cipher: .aesGCM256, key: .material(KeyMaterial(bytes: [UInt8](repeating: 7, count: 36))))
                if harness.fleet.withState({ $0.apply(.addSA(stale), on: node) }) == .applied { drift += 1 }
            }
            if random.next() % 2 == 0, var policy = converged[node]!.policies.first {
                policy.priority += 5
                if harness.fleet.withState({ $0.apply(.updatePolicy(policy), on: node) }) == .applied { drift += 1 }
            }
        }
        #expect(drift > 0)
        var records = harness.records
        let prepared = try await harness.reconciler.preparePass(number: 1, intent: intent, records: &records)
        for node in nodes {
            let observed = try harness.fleet.state.observe(node: node, reqid: harness.reqid)
            let expected = NodeDiff.operations(
                observed: observed, desiredSAs: converged[node]!.securityAssociations,
                desiredPolicies: converged[node]!.policies)
            let planned = prepared.plan.operations[node]?.map(\.operation) ?? []
            #expect(Set(planned) == Set(expected), "node \(node)")
        }
        #expect(prepared.plan.operationCount == drift)
        _ = try await harness.converge(intent)
        try harness.assertConverged(intent)
    }

    static let local = IPAddress("198.18.0.1")!
    static let peer = IPAddress("198.18.0.2")!

    static func sa(spi: UInt32, keyByte: UInt8) -> SecurityAssociation {
        SecurityAssociation(
            source: peer, destination: local, spi: SPI(spi), reqid: .meshwardDefault, cipher: .aesGCM256,
            key: .material(KeyMaterial(bytes: [UInt8](repeating: keyByte, count: 36))))
    }

    static func policy(port: UInt16, spi: UInt32, optional: Bool) -> SecurityPolicy {
        SecurityPolicy(
            selector: PolicySelector(
                source: IPPrefix(host: peer), destination: IPPrefix(host: local),
                traffic: TrafficMatch(transport: .tcp, destinationPort: port)),
            direction: .inbound,
            template: PolicyTemplate(family: .ipv4, spi: nil, reqid: .meshwardDefault, isOptional: optional))
    }
}
