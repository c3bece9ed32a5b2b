import AgentTestSupport
import Kernel
import KernelSimulator
import MeshwardCore
import Synchronization

@testable import Controller
@testable import Reconciler

/// The nodes of a simulated fleet, each reached through its in-process agent over gRPC and
/// mutual TLS instead of directly.
final class AgentFleetKernels: FleetKernels {
    let fleet: SimulatedFleet
    let agents: InProcessAgents
    let reqid: Reqid
    private let kernels: EndpointKernels

    /// - Parameter restarted: agents started again later (on the same CA) for some nodes; their
    ///   endpoints replace those of `agents` for the nodes they serve.
    init(
        fleet: SimulatedFleet, agents: InProcessAgents, restarted: [InProcessAgents] = [],
        reqid: Reqid = .meshwardDefault, epoch: UInt64 = 1
    ) {
        self.fleet = fleet
        self.agents = agents
        self.reqid = reqid
        var endpoints = agents.endpoints
        for later in restarted { endpoints.merge(later.endpoints) { $1 } }
        kernels = EndpointKernels(
            endpoints: endpoints, connectors: [agents.connector(epoch: { epoch })], reqid: reqid)
    }

    var knownNodes: Set<String> { Set(fleet.withState { $0.nodes.keys }) }

    func kernel(for node: String) async throws -> any NodeKernel { try await kernels.kernel(for: node) }

    func persist() throws {}
}
