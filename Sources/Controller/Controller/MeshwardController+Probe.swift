import DesiredState
import Foundation
import MeshwardCore
import Reconciler
import Store

extension MeshwardController {
    /// Which of `nodes` answer an observation now: the reconcile loop's cheap check of the
    /// nodes its last cycle could not reach, between full cycles. Observes only those nodes
    /// (each under its deadline, as a pass does), through the endpoints the last `apply`
    /// recorded and the spec's; touches no kernel. Under the loop's lease it enrolls an agent
    /// that answers with a provisional certificate (the token is spent and the serial recorded,
    /// as in a pass), so that a host that joins between cycles is protected at the next retry;
    /// otherwise it writes nothing.
    ///
    /// - Parameter lease: the loop's lease keeper, whose Store is reused; nil opens the Store.
    public func answeringNodes(
        _ nodes: Set<String>, of intent: FleetIntent, lease: LeaseKeeper? = nil
    ) async throws -> Set<String> {
        guard !nodes.isEmpty else { return [] }
        let store: any ControllerStore
        if let lease { store = lease.store } else { store = try await context.openStore() }
        let settings = try await session.settings(under: lease?.lease, in: store)
        let revoked = try await store.revokedNodes()
        let endpoints = ControllerContext.nodeEndpoints(
            for: intent, remembered: settings?.endpoints ?? [:], records: try await store.loadChannels()
        )
        .filter { nodes.contains($0.key) }
        // Nodes whose every certificate is revoked are never dialled.
        .filter { !revoked.contains($0.key) }
        let simulated =
            endpoints.values.contains(.sim) ? try context.loadSimulatedFleet(intent: intent) : nil
        let agents = try await context.agentConnector(
            for: endpoints, intent: intent, store: store, epoch: 0, enrolls: lease != nil)
        let kernels = context.session.kernels(
            endpoints: endpoints, simulated: simulated, reqid: Reqid(intent.reqid), agents: agents)
        let reconciler = FleetReconciler(
            store: store, kernels: kernels, reqid: Reqid(intent.reqid), clock: context.clock, logger: context.logger)
        let (observations, _, _) = await reconciler.observe(nodes.intersection(endpoints.keys))
        await kernels.close()
        return Set(observations.keys)
    }
}
