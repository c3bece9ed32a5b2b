import Agent
import Controller
import Kernel
import Logging
import MeshwardCore
import Reconciler

/// The fleet's nodes, each reached through its agent in whichever child process runs it.
final class BenchAgentKernels: FleetKernels {
    let knownNodes: Set<String>
    /// The child processes whose agents these kernels reach.
    let children: AgentsChildren
    private let kernels: EndpointKernels

    /// - Parameter executor: where the calls run; nil for the connection's event loop (as in
    ///   production).
    init(
        nodes: Set<String>, children: AgentsChildren, reqid: Reqid, executor: (any TaskExecutor)? = nil, logger: Logger
    ) {
        knownNodes = nodes
        self.children = children
        kernels = EndpointKernels(
            endpoints: children.ports.mapValues { .agent(host: "127.0.0.1", port: UInt16($0)) },
            connectors: [
                AgentConnector(
                    credentials: children.credentials, cluster: children.cluster, addresses: [:], epoch: { 1 },
                    executor: executor, logger: logger)
            ], reqid: reqid)
    }

    func kernel(for node: String) async throws -> any NodeKernel { try await kernels.kernel(for: node) }

    func persist() throws {}

    /// Closes every connection.
    func close() async { await kernels.close() }
}
