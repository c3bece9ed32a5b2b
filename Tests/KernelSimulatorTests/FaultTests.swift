import Kernel
import KernelSimulator
import MeshwardCore
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Fault injection")
struct FaultTests {
    static let policies = (1...4).map { index in
        SecurityPolicy(
            selector: PolicySelector(
                source: IPPrefix(host: FleetValues.address(of: "a")),
                destination: IPPrefix(host: FleetValues.address("198.18.2.\(index)"))),
            direction: .outbound,
            template: PolicyTemplate(
                family: .ipv4, spi: SPI(0x100 + UInt32(index)), reqid: FleetValues.reqid,
                isOptional: false)
        )
    }
    static let batch = policies.map { KernelOperation.addPolicy($0) }

    static func fleet() -> SimulatedFleet {
        SimulatedFleet(state: FleetValues.state(["a", "b"]))
    }

    @Test("the nth operation fails with the errno and has no effect; the others apply", arguments: 1...4)
    func nthOperationFails(nth: Int) async throws {
        let fleet = Self.fleet()
        fleet.failOperation(on: "a", nth: nth, errno: EIO)
        let results = try await fleet.kernel(for: "a", reqid: FleetValues.reqid).apply(Self.batch)
        for (index, result) in results.enumerated() {
            if index == nth - 1 {
                #expect(result.outcome == .failed(errno: EIO, message: "injected fault"))
            } else {
                #expect(result.outcome == .applied)
            }
        }
        let observed = try await fleet.kernel(for: "a", reqid: FleetValues.reqid).observe().policies
        #expect(Set(observed) == Set(Self.policies.enumerated().filter { $0.offset != nth - 1 }.map(\.element)))
    }

    @Test("a scheduled failure counts operations across batches, on its node only")
    func failureAcrossBatches() async throws {
        let fleet = Self.fleet()
        fleet.failOperation(on: "a", nth: 2, errno: ENOBUFS)
        let kernel = fleet.kernel(for: "a", reqid: FleetValues.reqid)
        let other = fleet.kernel(for: "b", reqid: FleetValues.reqid)
        #expect(try await other.apply([Self.batch[0], Self.batch[1]]).map(\.outcome) == [.applied, .applied])
        #expect(try await kernel.apply([Self.batch[0]]).map(\.outcome) == [.applied])
        #expect(
            try await kernel.apply([Self.batch[1], Self.batch[2]]).map(\.outcome)
                == [.failed(errno: ENOBUFS, message: "injected fault"), .applied])
    }

    @Test("an unreachable node refuses observe and apply, and passes packets")
    func unreachable() async throws {
        let fleet = Self.fleet()
        let kernel = fleet.kernel(for: "a", reqid: FleetValues.reqid)
        fleet.setReachable("a", false)
        await #expect(throws: KernelError.self) { try await kernel.observe() }
        await #expect(throws: KernelError.self) { try await kernel.apply(Self.batch) }
        #expect(fleet.send(from: "a", to: FleetValues.address(of: "b")) == .deliveredPlaintext)
        #expect(fleet.state.nodes["a"]?.policies.isEmpty == true)
        fleet.setReachable("a", true)
        #expect(try await kernel.apply(Self.batch).allSatisfy { $0.outcome == .applied })
    }

    @Test("a node the fleet does not have is unreachable")
    func unknownNode() async throws {
        let kernel = Self.fleet().kernel(for: "nobody", reqid: FleetValues.reqid)
        await #expect(throws: KernelError.self) { try await kernel.observe() }
        await #expect(throws: KernelError.self) { try await kernel.apply(Self.batch) }
    }

    @Test("a node that stops answering mid-batch applies the first n and attempts no more", arguments: 1...3)
    func stopsMidBatch(answered: Int) async throws {
        let fleet = Self.fleet()
        fleet.stopAnswering(on: "a", afterOperations: answered)
        let kernel = fleet.kernel(for: "a", reqid: FleetValues.reqid)
        let results = try await kernel.apply(Self.batch)
        #expect(results.prefix(answered).allSatisfy { $0.outcome == .applied })
        #expect(
            results.dropFirst(answered).allSatisfy {
                if case .notAttempted = $0.outcome { return true }
                return false
            })
        #expect(fleet.state.nodes["a"]?.policies.count == answered)
        await #expect(throws: KernelError.self) { try await kernel.observe() }
        await #expect(throws: KernelError.self) { try await kernel.apply(Self.batch) }
    }

    @Test("stopping after no operations makes the node unreachable at once")
    func stopsAtOnce() async throws {
        let fleet = Self.fleet()
        fleet.stopAnswering(on: "a", afterOperations: 0)
        await #expect(throws: KernelError.self) {
            try await fleet.kernel(for: "a", reqid: FleetValues.reqid).apply(Self.batch)
        }
    }

    @Test("the observer sees every operation with its outcome, in order")
    func observerSeesEveryOperation() async throws {
        let fleet = Self.fleet()
        let log = Log()
        fleet.failOperation(on: "a", nth: 2, errno: EIO)
        fleet.setOperationObserver { node, operation, outcome, state in
            log.append("\(node) \(operation.kind) \(outcome.isApplied) \(state.nodes[node]?.policies.count ?? -1)")
        }
        _ = try await fleet.kernel(for: "a", reqid: FleetValues.reqid).apply(Array(Self.batch.prefix(3)))
        #expect(log.entries == ["a add-policy true 1", "a add-policy false 1", "a add-policy true 2"])
    }
}
