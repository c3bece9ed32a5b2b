import Foundation
import Kernel
import MeshwardCore

/// The simulated fleet could not be loaded or saved.
public struct SimulatedFleetPersistenceError: Error, Sendable, CustomStringConvertible {
    /// The file involved.
    public let path: String
    /// What went wrong.
    public let reason: String

    public var description: String { "simulated fleet file \(path): \(reason)" }
}

extension SimulatedFleet {
    /// Loads a fleet saved by `save(to:)` (a SQLite file, see `SimulatedFleetFile`); a missing
    /// file gives an empty fleet.
    ///
    /// When `url` names `*.sqlite` and is missing, a JSON fleet an earlier Meshward saved beside
    /// it (`simulated-fleet.json` for `simulated-fleet.sqlite`) is migrated: written to `url`,
    /// then renamed to `*.json.migrated`.
    ///
    /// Refuses a file (or its SQLite journal) that group or others may read or write, as the
    /// state directory's other files are refused (the error says which `chmod` fixes it): it
    /// lists every SA and key fingerprint of the fleet, and a file someone loosened must be
    /// noticed, not rewritten. Refuses a file that is not a simulated fleet, and a node whose
    /// row cannot be decoded (the error names the node).
    public static func load(from url: URL) throws -> SimulatedFleet {
        let file = SimulatedFleetFile(path: url.path)
        guard let baseline = try file.read() ?? file.migrateLegacyJSON() else { return SimulatedFleet() }
        let fleet = SimulatedFleet(state: baseline.state)
        fleet.storage.withLock { $0.persisted = baseline }
        return fleet
    }

    /// What the owner of `reqid` observes on each of `nodes`, read from the fleet saved at `url`
    /// without loading it: each node's row is decoded straight into its observation, on every
    /// core, and rows of other nodes are not decoded. An observation equals the one a loaded
    /// fleet's kernel makes; a node that does not answer has its kernel's `unreachable` error.
    /// Nodes the file does not hold are left out.
    ///
    /// Nil when there is no SQLite file at `url` (a JSON fleet of an earlier Meshward is
    /// migrated by `load(from:)`, which this does not do). Refuses what `load(from:)` refuses.
    public static func observations(
        from url: URL, of nodes: Set<String>, reqid: Reqid
    ) throws -> [String: Result<NodeObservation, KernelError>]? {
        try SimulatedFleetFile(path: url.path).readObservations(of: nodes, reqid: reqid)
    }

    /// Saves the fleet to `url` in one transaction: a crash leaves the old state or the new one.
    /// The file is created 0600 and holds key fingerprints, never keys.
    ///
    /// Only the nodes that changed since this fleet last loaded or saved `url` are written, and
    /// the rows of nodes that left are deleted; every node is written when the fleet knows no
    /// earlier state of `url`, or someone else wrote it since.
    @discardableResult
    public func save(to url: URL) throws -> SimulatedFleetSaveSummary {
        let (state, baseline) = storage.withLock { ($0.state, $0.persisted) }
        let written = try SimulatedFleetFile(path: url.path).write(state, since: baseline)
        storage.withLock { $0.persisted = written.baseline }
        return written.summary
    }
}

extension SimulatedFleetState {
    /// Saves the whole state as `SimulatedFleet.save(to:)` does, every node rewritten, for code
    /// that holds the state itself (an operation observer, which runs under the fleet's lock and
    /// must not call back into it). A fleet that saves to the same file later notices the
    /// rewrite and writes every node again.
    public func save(to url: URL) throws {
        _ = try SimulatedFleetFile(path: url.path).write(self, since: nil)
    }
}
