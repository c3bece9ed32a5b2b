import Agent
import DesiredState
import Foundation
import Identity
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import Reconciler
import Store

extension MeshwardController {
    /// Owned SAs and policies per node, leaving out nodes that hold none.
    static func ownedObjects(_ observations: [String: NodeObservation]) -> [String: Int] {
        observations.compactMapValues { observation in
            let count = observation.securityAssociations.count + observation.policies.count
            return count > 0 ? count : nil
        }
    }

    /// Throws `ControllerError.lostStore` when the Store holds no channel while the fleet shows
    /// it had one: the kernels of the spec's nodes hold objects with Meshward's reqid, or agents
    /// of the spec serve certificates of a cluster CA this Store does not hold (their CA was in
    /// the Store that was lost). Applying would silently rekey every channel and restart the
    /// history, which only an operator who knows the Store was lost should ask for
    /// (`apply --force`). Reads the kernels; changes nothing, and creates no CA: when the Store
    /// holds none, agents are dialled with credentials of a CA made for this check alone.
    func refuseLostStore(_ intent: FleetIntent, store: any ControllerStore) async throws {
        guard try await !store.hasChannels() else { return }
        var endpoints: [String: NodeEndpoint] = [:]
        for node in intent.nodes { endpoints[node.name] = node.endpoint }
        let simulated = try SimulatedFleet.load(from: simulatedFleetURL)
        let reqid = Reqid(intent.reqid)
        let quiet = Logger(label: "meshward.lost-store", factory: { _ in SwiftLogNoOpLogHandler() })
        var addresses: [String: IPAddress] = [:]
        for node in intent.nodes {
            if let first = node.addresses.first { addresses[node.name] = first }
        }
        let credentials = ClusterCredentials(store: store, cluster: intent.cluster)
        let agents = try await context.agentConnector(
            for: endpoints, cluster: intent.cluster, addresses: addresses, store: store, epoch: 0,
            credentials: try await credentials.storedAuthority() == nil
                ? Self.checkCredentials(cluster: intent.cluster, now: clock.now()) : nil)
        let kernels = session.kernels(
            endpoints: endpoints, simulated: simulated, reqid: reqid, agents: agents, logger: quiet)
        let reader = FleetReconciler(
            store: ScratchGenerationStore(channels: [:]), kernels: kernels, reqid: reqid, clock: clock, logger: quiet)
        let (observations, _, _) = await reader.observe(Set(endpoints.keys))
        await kernels.close()
        let owned = Self.ownedObjects(observations)
        let foreign = endpoints.filter { $0.value.scheme == .agent }.keys.filter { node in
            session.agents.link(for: node)?.presentedAnotherCA ?? false
        }
        guard owned.isEmpty && foreign.isEmpty else {
            throw ControllerError.lostStore(directory: stateDirectory, owned: owned, foreignAgents: foreign.sorted())
        }
    }

    /// Controller credentials of a CA made for one check and never stored: an agent enrolled by
    /// a lost Store's CA refuses them, and its own certificate does not verify with them, which
    /// is what the check looks for.
    static func checkCredentials(cluster: String, now: Date) throws -> AgentCredentials {
        let ca = try ClusterCA.create(cluster: cluster, now: now)
        return try AgentCredentials(
            ca: ca, issued: ca.issue(for: .controller(cluster: cluster), now: now, validity: .seconds(3_600)))
    }
}
