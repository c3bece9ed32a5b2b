import Kernel
import MeshwardCore

/// Serves `sim` endpoints from one simulated fleet.
public struct SimulatedConnector: KernelConnector {
    public let fleet: SimulatedFleet

    public init(fleet: SimulatedFleet) { self.fleet = fleet }

    public var schemes: Set<NodeEndpoint.Scheme> { [.sim] }

    public func connect(node: String, endpoint: NodeEndpoint, reqid: Reqid) async throws -> any NodeKernel {
        fleet.kernel(for: node, reqid: reqid)
    }
}
