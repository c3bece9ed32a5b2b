import Kernel
import KernelSimulator
import MeshwardCore

/// The behavioural suite's fixture over a fresh `SimulatedFleet`.
struct SimulatedKernelFixture: KernelFixture {
    let fleet = SimulatedFleet()

    var missingSASupport: String? { nil }

    func makeNode(_ name: String, addresses: [IPAddress]) async throws {
        fleet.withState { $0.addNode(name, addresses: addresses) }
    }

    func kernel(for node: String, reqid: Reqid) throws -> any NodeKernel {
        fleet.kernel(for: node, reqid: reqid)
    }

    func tearDown() async {}
}
