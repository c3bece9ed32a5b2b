import DesiredState
import Foundation
import Kernel
import MeshwardCore
import MeshwardTestSupport
import Store
import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

/// Planning in parallel chunks gives exactly what planning on one thread gives.
@Suite("Parallel planning")
struct ParallelPlanningTests {
    @Test(
        "chunked plans on an index built across threads equal single-threaded plans", arguments: [UInt64(1), 2, 3])
    func chunkedEqualsSerial(seed: UInt64) async throws {
        var random = SeededRandom(seed: seed)
        let harness = ContinuityHarness(seed: seed)
        var spec = FleetSpec(nodes: (1...8).map { FleetSpec.node($0, ipv6: $0 % 2 == 0) }, flows: [])
        for from in 1...8 {
            for to in 1...8 where from < to && random.next() % 3 != 0 {
                spec.flows.append(
                    .init(
                        name: "f\(from)-\(to)", from: "n\(from)", to: "n\(to)",
                        ports: random.next() % 2 == 0 ? ["tcp/8080"] : [], cipher: nil))
            }
        }
        let intent = try spec.compile()
        try await harness.converge(intent)
        // Drift: some channels due for a rekey, one node re-imaged, a flow gone.
        harness.clock.advance(by: 1)
        var requests: [ChannelID: Date] = [:]
        for id in harness.records.keys where random.next() % 3 == 0 { requests[id] = harness.clock.now() }
        harness.wipe("n3")
        spec.flows.removeLast()
        let changed = try spec.compile()
        let observations = Dictionary(
            uniqueKeysWithValues: try changed.nodes.map { node in
                (node.name, try harness.fleet.state.observe(node: node.name, reqid: harness.reqid))
            })
        let input = PlanningInput(
            intent: changed, channels: harness.records, observations: observations,
            knownNodes: Set(changed.nodes.map(\.name)), rekeyRequests: requests, reqid: harness.reqid,
            now: harness.clock.now())
        let serial = FleetPlanner(parallelThreshold: .max, indexParallelNodes: .max).plan(input)
        for chunks in [2, 3, 7] {
            // The nodes' lookup tables built across threads too (at every size, not from 64 nodes).
            let parallel = FleetPlanner(parallelThreshold: 1, chunks: chunks, indexParallelNodes: 1).plan(input)
            #expect(parallel.operations == serial.operations)
            #expect(parallel.recordUpdates == serial.recordUpdates)
            #expect(parallel.generationRequests == serial.generationRequests)
            #expect(parallel.blocked == serial.blocked)
            #expect(parallel.stepCounts == serial.stepCounts)
            #expect(parallel.removedChannels == serial.removedChannels)
            #expect(parallel.nextDeadline == serial.nextDeadline)
        }
        #expect(serial.operationCount > 0)
    }
}
