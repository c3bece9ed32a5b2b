import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import Reconciler
import Synchronization

/// Reaches each node through its endpoint, by the connector of the endpoint's scheme: the
/// simulated fleet kept in the state directory (`sim`), XFRM netlink in the controller's own
/// namespace (`local`) or a named one (`netns:NAME`), or the agent on another host (`agent`).
///
/// Kernels are connected on first use and kept; a node whose kernel cannot be connected is
/// reported unreachable by the pass, with the reason, and tried again on the next pass.
/// `close()` closes the kernels it opened, except those of a connector that keeps its kernels
/// (the process's agent connections, `AgentConnectionPool`, and its netlink kernels,
/// `LocalKernelPool`).
public final class EndpointKernels: FleetKernels {
    private let endpoints: [String: NodeEndpoint]
    private let connectors: [NodeEndpoint.Scheme: any KernelConnector]
    private let simulated: SimulatedFleet?
    private let simulatedFile: URL?
    private let reqid: Reqid
    private let opened = Mutex<[String: Opened]>([:])

    private struct Opened {
        let kernel: any NodeKernel
        /// Whether its connector keeps it beyond this use.
        let kept: Bool
    }

    /// - Parameters:
    ///   - endpoints: every node to reach, with its endpoint.
    ///   - simulated: the simulated fleet for `sim` nodes; saved to `simulatedFile` by `persist()`
    ///     when that is given.
    ///   - local: the connector for `local` and `netns:` endpoints (the session's kept kernels,
    ///     `LocalKernelPool`); nil opens a netlink socket for this use (`NetlinkConnector`).
    ///   - agents: the connector for `agent` endpoints, when the fleet has any.
    public convenience init(
        endpoints: [String: NodeEndpoint], simulated: SimulatedFleet?, simulatedFile: URL?, reqid: Reqid,
        local: (any KernelConnector)? = nil, agents: (any KernelConnector)? = nil, logger: Logger
    ) {
        var connectors: [any KernelConnector] = [local ?? NetlinkConnector(logger: logger)]
        if let simulated { connectors.append(SimulatedConnector(fleet: simulated)) }
        if let agents { connectors.append(agents) }
        self.init(
            endpoints: endpoints, connectors: connectors, simulated: simulated, simulatedFile: simulatedFile,
            reqid: reqid)
    }

    /// - Parameter connectors: one per scheme; a later connector for a scheme replaces an earlier one.
    public init(
        endpoints: [String: NodeEndpoint], connectors: [any KernelConnector], simulated: SimulatedFleet? = nil,
        simulatedFile: URL? = nil, reqid: Reqid
    ) {
        self.endpoints = endpoints
        var byScheme: [NodeEndpoint.Scheme: any KernelConnector] = [:]
        for connector in connectors {
            for scheme in connector.schemes { byScheme[scheme] = connector }
        }
        self.connectors = byScheme
        self.simulated = simulated
        self.simulatedFile = simulatedFile
        self.reqid = reqid
    }

    public var knownNodes: Set<String> { Set(endpoints.keys) }

    public func kernel(for node: String) async throws -> any NodeKernel {
        if let kernel = opened.withLock({ $0[node]?.kernel }) { return kernel }
        guard let endpoint = endpoints[node] else {
            throw KernelError.unreachable(node: node, reason: "no endpoint is known for it")
        }
        guard let connector = connectors[endpoint.scheme] else {
            throw KernelError.unreachable(
                node: node, reason: "nothing here connects to `\(endpoint.scheme.rawValue)` endpoints (\(endpoint))")
        }
        let kernel = try await connector.connect(node: node, endpoint: endpoint, reqid: reqid)
        return opened.withLock { opened in
            if let raced = opened[node] { return raced.kernel }
            opened[node] = Opened(kernel: kernel, kept: connector.keepsKernels)
            return kernel
        }
    }

    public func close() async {
        let kernels = opened.withLock { opened in
            defer { opened = [:] }
            return opened.values.filter { !$0.kept }.map(\.kernel)
        }
        await withTaskGroup(of: Void.self) { group in
            for kernel in kernels { group.addTask { await kernel.close() } }
        }
    }

    public func persist() throws {
        if let simulated, let simulatedFile { try simulated.save(to: simulatedFile) }
    }
}
