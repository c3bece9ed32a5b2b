import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import Store

extension MeshwardController {
    /// Owned SAs and policies per node, leaving out nodes that hold none.
    static func ownedObjects(_ observations: [String: NodeObservation]) -> [String: Int] {
        observations.compactMapValues { observation in
            let count = observation.securityAssociations.count + observation.policies.count
            return count > 0 ? count : nil
        }
    }

    /// Throws `ControllerError.lostStore` when the Store holds no channel while the kernels of
    /// the spec's nodes hold objects with Meshward's reqid: applying would silently rekey every
    /// channel and restart the history, which only an operator who knows the Store was lost
    /// should ask for (`apply --force`). Reads the kernels; changes nothing.
    func refuseLostStore(_ intent: FleetIntent, store: any GenerationStore) async throws {
        guard try await !store.hasChannels() else { return }
        var endpoints: [String: NodeEndpoint] = [:]
        for node in intent.nodes { endpoints[node.name] = node.endpoint }
        let simulated = try SimulatedFleet.load(from: simulatedFleetURL)
        let reqid = Reqid(intent.reqid)
        let kernels = EndpointKernels(
            endpoints: endpoints, simulated: simulated, simulatedFile: nil, reqid: reqid,
            logger: Logger(label: "meshward.lost-store", factory: { _ in SwiftLogNoOpLogHandler() }))
        let reader = FleetReconciler(
            store: ScratchGenerationStore(channels: [:]), kernels: kernels, reqid: reqid, clock: SystemClock(),
            logger: Logger(label: "meshward.lost-store", factory: { _ in SwiftLogNoOpLogHandler() }))
        let (observations, _) = await reader.observe(Set(endpoints.keys))
        let owned = Self.ownedObjects(observations)
        guard owned.isEmpty else { throw ControllerError.lostStore(directory: stateDirectory, owned: owned) }
    }
}
