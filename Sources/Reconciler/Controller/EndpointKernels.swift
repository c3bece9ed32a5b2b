import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import Synchronization

/// Reaches each node through its endpoint: the simulated fleet kept in the state directory
/// (`sim`), the controller's own namespace (`local`), or a named namespace (`netns:NAME`).
///
/// Netlink kernels are opened on first use and kept; a node whose namespace cannot be opened
/// is reported unreachable by the pass, with the reason, and retried on the next pass.
public final class EndpointKernels: FleetKernels {
    private let endpoints: [String: KernelEndpoint]
    private let simulated: SimulatedFleet?
    private let simulatedFile: URL?
    private let reqid: Reqid
    private let logger: Logger
    private let opened = Mutex<[String: any NodeKernel]>([:])

    /// - Parameters:
    ///   - endpoints: every node to reach, with its endpoint.
    ///   - simulated: the simulated fleet for `sim` nodes; saved to `simulatedFile` by `persist()`
    ///     when that is given.
    public init(
        endpoints: [String: KernelEndpoint], simulated: SimulatedFleet?, simulatedFile: URL?, reqid: Reqid,
        logger: Logger
    ) {
        self.endpoints = endpoints
        self.simulated = simulated
        self.simulatedFile = simulatedFile
        self.reqid = reqid
        self.logger = logger
    }

    public var knownNodes: Set<String> { Set(endpoints.keys) }

    public func kernel(for node: String) throws -> any NodeKernel {
        if let kernel = opened.withLock({ $0[node] }) { return kernel }
        guard let endpoint = endpoints[node] else {
            throw KernelError.unreachable(node: node, reason: "no endpoint is known for it")
        }
        let kernel: any NodeKernel
        switch endpoint {
        case .simulated:
            guard let simulated else {
                throw KernelError.unreachable(node: node, reason: "the simulated fleet is not loaded")
            }
            kernel = simulated.kernel(for: node, reqid: reqid)
        case .local, .namespace:
            kernel = try NetlinkKernel(node: node, endpoint: endpoint, reqid: reqid, logger: logger)
        }
        opened.withLock { $0[node] = kernel }
        return kernel
    }

    public func persist() throws {
        if let simulated, let simulatedFile { try simulated.save(to: simulatedFile) }
    }
}

extension KernelEndpoint {
    /// The kernel endpoint a spec's node endpoint names.
    public init(_ endpoint: NodeEndpoint) {
        switch endpoint {
        case .sim: self = .simulated
        case .local: self = .local
        case .namespace(let name): self = .namespace(name)
        }
    }
}
