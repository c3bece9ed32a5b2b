import Foundation
import Kernel
import KernelSimulator
import MeshwardCore
import Reconciler

/// Every node of a simulated fleet, reached directly: for tests and benchmarks that build a
/// fleet in memory. (The command-line tool goes through `EndpointKernels`.)
public final class SimulatedFleetKernels: FleetKernels {
    private let fleet: SimulatedFleet
    private let reqid: Reqid
    private let file: URL?

    /// - Parameter file: where `persist()` saves the fleet; nil keeps it in memory only.
    public init(fleet: SimulatedFleet, reqid: Reqid, file: URL? = nil) {
        self.fleet = fleet
        self.reqid = reqid
        self.file = file
    }

    public var knownNodes: Set<String> { Set(fleet.withState { $0.nodes.keys }) }

    public func kernel(for node: String) async throws -> any NodeKernel { fleet.kernel(for: node, reqid: reqid) }

    public func persist() throws {
        if let file { try fleet.save(to: file) }
    }
}
