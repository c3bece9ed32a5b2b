import DesiredState
import Foundation
import KernelSimulator
import Logging
import MeshwardCore
import Reconciler
import Store

/// What the parts of the controller share: where the state is, how to log, the clock, and the
/// few readings of the state directory that apply, plan and status all make.
struct ControllerContext: Sendable {
    /// The state directory (Store, master key, simulated fleet).
    let stateDirectory: String
    /// Where the Store lives: the state directory, or a PostgreSQL server.
    let storeLocation: StoreLocation
    let masterKeyPath: String?
    let logger: Logger
    let clock: any ReconcilerClock
    /// Where passes and the lease are reported (metrics); discards unless the loop gives one.
    let recorder: any ReconcileRecorder
    /// The process's kernels and agent connections, kept across commands and cycles.
    let session: FleetSession
    /// What a test harness watches; none in `meshward`.
    let observers: ControllerObservers

    /// The simulated fleet's file in the state directory.
    var simulatedFleetURL: URL {
        URL(fileURLWithPath: stateDirectory).appendingPathComponent("simulated-fleet.sqlite")
    }

    /// Whether the state directory holds a Store. Throws `permissionDenied` (naming the path)
    /// when the directory or the database exists but this user may not read it, so that a
    /// state directory this user cannot see into is never taken for an empty one.
    /// A Store on a database server always exists once migrated (opening it says when not).
    func hasState() throws -> Bool {
        guard storeLocation == .stateDirectory else { return true }
        return try StateAccess.storeExists(in: stateDirectory)
    }

    /// The process's Store, where `storeLocation` says (`StoreLocation.open`, the one place that
    /// names a conformer), opened at the first use and kept by the session; everything else
    /// speaks to the Store's roles.
    func openStore() async throws -> any ControllerStore {
        try await session.store { [storeLocation, stateDirectory, masterKeyPath, logger] in
            try await storeLocation.open(stateDirectory: stateDirectory, masterKeyPath: masterKeyPath, logger: logger)
        }
    }

    /// The simulated fleet from the state directory, with every `sim` node of the spec in it
    /// (a node that joins the spec is a machine that exists, with an empty kernel).
    func loadSimulatedFleet(intent: FleetIntent) throws -> SimulatedFleet {
        let fleet = try SimulatedFleet.load(from: simulatedFleetURL)
        fleet.withState { state in
            for node in intent.nodes where node.endpoint == .sim {
                state.addNode(node.name, addresses: node.addresses)
            }
        }
        return fleet
    }

    /// Nodes of the spec, plus remembered nodes that still have channels in the Store.
    static func nodeEndpoints(
        for intent: FleetIntent, remembered: [String: NodeEndpoint],
        records: [ChannelID: ChannelRecord]
    ) -> [String: NodeEndpoint] {
        var result: [String: NodeEndpoint] = [:]
        let named = Set(intent.nodes.map(\.name))
        let unnamed = remembered.filter { !named.contains($0.key) }
        if !unnamed.isEmpty {
            var involved = Set<String>()
            for id in records.keys where !named.contains(id.from) || !named.contains(id.to) {
                involved.insert(id.from)
                involved.insert(id.to)
            }
            for (node, endpoint) in unnamed where involved.contains(node) { result[node] = endpoint }
        }
        for node in intent.nodes { result[node.name] = node.endpoint }
        return result
    }

    /// The recorded rekey requests of channels the spec still names.
    static func requests(_ requests: [ChannelID: Date], in intent: FleetIntent) -> [ChannelID: Date] {
        var result: [ChannelID: Date] = [:]
        for channel in intent.channels {
            if let requested = requests[channel.id] { result[channel.id] = requested }
        }
        return result
    }
}
