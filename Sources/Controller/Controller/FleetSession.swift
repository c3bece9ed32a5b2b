import Agent
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import Reconciler
import Store
import Synchronization

/// The controller process's reach into its fleet, made once per process (`MeshwardController`)
/// and used by every command it runs and every cycle of its reconcile loop: the Store, opened
/// once and kept (`store(open:)`); the node kernels of each use, built here; the connections to
/// the nodes' agents (`AgentConnectionPool`) and the netlink kernels of its `local` and `netns:`
/// nodes (`LocalKernelPool`), which outlive the use; and the watch of those nodes (`FleetWatch`).
/// A loop of any number of cycles opens one connection per agent and one kernel per `local` or
/// `netns:` node, and follows each through one watch stream; a connection is made again only
/// when it broke (an agent that restarted: gRPC reconnects to it alone) or when the node's
/// address, the controller's credentials or the revocation of the agent's certificate ask for
/// it, and a kernel only when the node's endpoint or the reqid changed.
///
/// Simulated kernels are opened for each use and closed after it: a simulated fleet is read
/// from the state directory afresh (it may have changed between uses). They are polled, never
/// watched.
///
/// `close()` stops the watch, closes the kept kernels and the agent connections cleanly; a
/// process closes its session before it exits (`MeshwardController.close()`).
public final class FleetSession: Sendable {
    /// The connections to the agents, kept across uses.
    public let agents: AgentConnectionPool
    /// The netlink kernels of the fleet's `local` and `netns:` nodes, kept across uses.
    public let localKernels: LocalKernelPool
    /// The watch of the kernels of the agents and of the `local` and `netns:` nodes, kept across
    /// uses: the cache a reconcile cycle plans on.
    public let watch: FleetWatch
    private let logger: Logger
    /// The Store once opened (or being opened); an open that failed is not kept.
    private let keptStore = Mutex<Task<any ControllerStore, any Error>?>(nil)
    /// The settings as last read or written under one tenure of the lease (`settings(under:in:)`).
    private let keptSettings = Mutex<(tenure: LeaseTenure, settings: ControllerSettings?)?>(nil)

    /// One holder's unbroken hold of the lease: its epoch and when it took it (renewals keep
    /// both). A Store made anew under a running controller starts its epochs again; the time
    /// it was taken tells that tenure from the old one.
    struct LeaseTenure: Hashable {
        let epoch: Int64
        let acquiredAt: Date

        init?(_ lease: Lease?) {
            guard let lease, lease.epoch > 0 else { return nil }
            epoch = lease.epoch
            acquiredAt = lease.acquiredAt
        }
    }

    /// - Parameter beforeAgentApply: called right before each apply request leaves for an
    ///   agent (a test harness's; nil in production).
    init(clock: any ReconcilerClock, beforeAgentApply: (@Sendable (String) -> Void)? = nil, logger: Logger) {
        self.agents = AgentConnectionPool(now: { clock.now() }, beforeApply: beforeAgentApply, logger: logger)
        let watch = FleetWatch(clock: clock, logger: logger)
        self.watch = watch
        self.localKernels = LocalKernelPool(clock: clock, progressInterval: watch.progressInterval, logger: logger)
        self.logger = logger
    }

    /// The endpoint schemes whose nodes the watch follows: agents, and the netlink kernels of
    /// this host. `sim` nodes are polled (read at every pass).
    static let watchedSchemes: Set<NodeEndpoint.Scheme> = LocalKernelPool.endpointSchemes.union([.agent])

    /// The kernel the watch's stream of `node` follows, at each opening of the stream: the kept
    /// netlink kernel of a `local` or `netns:` node (watching), else the kept connection to its
    /// agent. Throws `KernelError.unreachable` when there is neither yet (the stream is opened
    /// again after a backoff), and when the kernel cannot be opened.
    func watchedKernel(for node: String) async throws -> any NodeKernel {
        if let kernel = try await localKernels.watchedKernel(for: node) { return kernel }
        if let kernel = agents.keptKernel(for: node) { return kernel }
        throw KernelError.unreachable(node: node, reason: "no connection to its agent yet")
    }

    /// The process's Store: opened by `open` at the first use, then the same Store for every
    /// later use (the lease keeper's included). An open that fails is tried again at the next
    /// use; uses that ask while it opens wait for that one open.
    func store(open: @escaping @Sendable () async throws -> any ControllerStore) async throws -> any ControllerStore {
        let opening = keptStore.withLock { kept in
            if let kept { return kept }
            let opening = Task { try await open() }
            kept = opening
            return opening
        }
        do {
            return try await opening.value
        } catch {
            keptStore.withLock { kept in if kept == opening { kept = nil } }
            throw error
        }
    }

    /// The controller's settings (`ControllerSettings`) in `store`: read once per tenure of the
    /// lease (`lease`, held by this controller) and kept. Under one epoch only its holder
    /// writes them (every write is fenced), so a loop that keeps its lease reads them at its
    /// first cycle alone; a new tenure (a takeover, another controller's turn in between, a
    /// Store made anew) reads them again. No lease: every use reads them.
    func settings(under lease: Lease?, in store: any MetadataStore) async throws -> ControllerSettings? {
        let tenure = LeaseTenure(lease)
        if let tenure, let kept = keptSettings.withLock({ $0 }), kept.tenure == tenure { return kept.settings }
        let settings = try await ControllerSettings.load(from: store)
        if let tenure { keptSettings.withLock { $0 = (tenure, settings) } }
        return settings
    }

    /// Writes `settings` to `store` under `lease`, unless they are what that tenure last read
    /// or wrote: a cycle that changes nothing writes nothing.
    func save(_ settings: ControllerSettings, under lease: Lease?, to store: any MetadataStore) async throws {
        let tenure = LeaseTenure(lease)
        if let tenure, let kept = keptSettings.withLock({ $0 }), kept.tenure == tenure, kept.settings == settings {
            return
        }
        keptSettings.withLock { $0 = nil }
        try await settings.save(to: store)
        if let tenure { keptSettings.withLock { $0 = (tenure, settings) } }
    }

    /// The kernels of `endpoints` for one use: `sim` nodes in `simulated` (saved to
    /// `simulatedFile` by `persist()` when given), `local` and `netns:` nodes over the kept
    /// netlink kernels (`localKernels`), and `agent` nodes over the kept connections of `agents`
    /// (nil: every agent node is reported unreachable, as nothing here connects to it).
    func kernels(
        endpoints: [String: NodeEndpoint], simulated: SimulatedFleet?, simulatedFile: URL? = nil, reqid: Reqid,
        agents: AgentPoolConnector?, logger: Logger? = nil
    ) -> EndpointKernels {
        EndpointKernels(
            endpoints: endpoints, simulated: simulated, simulatedFile: simulatedFile, reqid: reqid,
            local: localKernels, agents: agents, logger: logger ?? self.logger)
    }

    /// Stops the watch, and closes every kept kernel and connection.
    func close() async {
        watch.stop()
        await localKernels.close()
        await agents.close()
    }
}
