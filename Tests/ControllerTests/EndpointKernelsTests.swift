import Foundation
import Kernel
import KernelSimulator
import MeshwardCore
import Synchronization
import Testing

@testable import Controller
@testable import Reconciler

/// Resolving endpoints to kernels: one connector per scheme, connected once, failures reported.
@Suite("Endpoint kernels")
struct EndpointKernelsTests {
    /// A connector for `netns` endpoints that counts its connects and fails for one node.
    final class CountingConnector: KernelConnector {
        let fleet = SimulatedFleet()
        let failing: String
        let connects = Mutex<[String]>([])

        init(failing: String) { self.failing = failing }

        var schemes: Set<NodeEndpoint.Scheme> { [.netns] }

        func connect(node: String, endpoint: NodeEndpoint, reqid: Reqid) async throws -> any NodeKernel {
            connects.withLock { $0.append("\(node) \(endpoint)") }
            if node == failing { throw KernelError.unreachable(node: node, reason: "connect refused") }
            return fleet.kernel(for: node, reqid: reqid)
        }
    }

    @Test("each endpoint goes to its scheme's connector, once; a failed connect is tried again and names the node")
    func connectorsPerScheme() async throws {
        let simulated = SimulatedFleet()
        simulated.withState { $0.addNode("s", addresses: []) }
        let counting = CountingConnector(failing: "bad")
        let kernels = EndpointKernels(
            endpoints: ["s": .sim, "n": .namespace("n"), "bad": .namespace("bad"), "l": .local],
            connectors: [SimulatedConnector(fleet: simulated), counting], reqid: .meshwardDefault)

        #expect(try await kernels.kernel(for: "s") is SimulatedKernel)
        _ = try await kernels.kernel(for: "n")
        _ = try await kernels.kernel(for: "n")
        #expect(counting.connects.withLock { $0 } == ["n netns:n"], "a connected kernel is kept")

        for _ in 0..<2 {
            await #expect(throws: KernelError.self) { _ = try await kernels.kernel(for: "bad") }
        }
        #expect(counting.connects.withLock { $0.filter { $0.hasPrefix("bad") }.count } == 2)

        let noConnector = await #expect(throws: KernelError.self) { _ = try await kernels.kernel(for: "l") }
        #expect("\(noConnector.map { "\($0)" } ?? "")".contains("`local`"))
        let unknown = await #expect(throws: KernelError.self) { _ = try await kernels.kernel(for: "other") }
        #expect("\(unknown.map { "\($0)" } ?? "")".contains("no endpoint"))
    }
}
