import Kernel
import KernelSimulator
import MeshwardCore

/// The behavioural suite's fixture over a fresh `SimulatedFleet`.
struct SimulatedKernelFixture: KernelFixture {
    let fleet = SimulatedFleet()

    var supportsSAs: Bool { true }

    func makeNode(_ name: String, addresses: [IPAddress]) async throws {
        fleet.withState { $0.addNode(name, addresses: addresses) }
    }

    func kernel(for node: String, reqid: Reqid) -> any NodeKernel {
        fleet.kernel(for: node, reqid: reqid)
    }

    func tearDown() async {}
}
