import Agent
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import Reconciler

/// The controller process's reach into its fleet, made once per process (`MeshwardController`)
/// and used by every command it runs and every cycle of its reconcile loop: the node kernels of
/// each use are built here, and the connections to the nodes' agents (`AgentConnectionPool`)
/// outlive the use. A loop of any number of cycles opens one connection per agent; a
/// connection is made again only when it broke (an agent that restarted: gRPC reconnects to it
/// alone) or when the node's address, the controller's credentials or the revocation of the
/// agent's certificate ask for it.
///
/// Simulated and netlink kernels are opened for each use and closed after it: a simulated fleet
/// is read from the state directory afresh (it may have changed between uses), and a netlink
/// socket costs no handshake.
///
/// `close()` closes the agent connections cleanly; a process closes its session before it exits
/// (`MeshwardController.close()`).
public final class FleetSession: Sendable {
    /// The connections to the agents, kept across uses.
    public let agents: AgentConnectionPool
    private let logger: Logger

    /// - Parameter beforeAgentApply: called right before each apply request leaves for an
    ///   agent (a test harness's; nil in production).
    init(clock: any ReconcilerClock, beforeAgentApply: (@Sendable (String) -> Void)? = nil, logger: Logger) {
        self.agents = AgentConnectionPool(now: { clock.now() }, beforeApply: beforeAgentApply, logger: logger)
        self.logger = logger
    }

    /// The kernels of `endpoints` for one use: `sim` nodes in `simulated` (saved to
    /// `simulatedFile` by `persist()` when given), `local` and `netns:` nodes over netlink, and
    /// `agent` nodes over the kept connections of `agents` (nil: every agent node is reported
    /// unreachable, as nothing here connects to it).
    func kernels(
        endpoints: [String: NodeEndpoint], simulated: SimulatedFleet?, simulatedFile: URL? = nil, reqid: Reqid,
        agents: AgentPoolConnector?, logger: Logger? = nil
    ) -> EndpointKernels {
        EndpointKernels(
            endpoints: endpoints, simulated: simulated, simulatedFile: simulatedFile, reqid: reqid, agents: agents,
            logger: logger ?? self.logger)
    }

    /// Closes every kept connection.
    func close() async {
        await agents.close()
    }
}
