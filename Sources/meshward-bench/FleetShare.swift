import Foundation
import KernelSimulator

/// Some nodes of a simulated fleet, with their kernels as they are, saved in the fleet file's
/// own format (`SimulatedFleet.load(from:)` reads it back as a fleet of these nodes alone).
///
/// An agents' child loads only its share, so that no child holds the whole fleet. Nothing is
/// lost by the split: the benchmark sends no simulated packets between nodes, so no node's
/// kernel needs another node's.
struct FleetShare: Encodable {
    /// The nodes of the share, in the order `split` sorts them.
    let nodes: [String]
    private let formatVersion: Int
    private let currentTime: UInt64
    private let kernels: [String: SimulatedNode]

    private enum CodingKeys: String, CodingKey {
        case formatVersion, currentTime
        case kernels = "nodes"
    }

    /// Splits `state`'s nodes, sorted by name (numbers in names by value: `node-9` before
    /// `node-10`), into shares of at most `size` nodes each, in order: the first share has the
    /// first `size` names.
    static func split(_ state: SimulatedFleetState, size: Int) throws -> [FleetShare] {
        precondition(size > 0, "a share holds at least one node")
        let formatVersion = try SavedFormat.version(of: state)
        let names = state.nodes.keys.sorted { $0.compare($1, options: .numeric) == .orderedAscending }
        return stride(from: 0, to: names.count, by: size).map { start in
            let nodes = Array(names[start..<min(start + size, names.count)])
            return FleetShare(
                nodes: nodes, formatVersion: formatVersion, currentTime: state.currentTime,
                kernels: Dictionary(
                    uniqueKeysWithValues: nodes.compactMap { name in state.nodes[name].map { (name, $0) } }))
        }
    }

    /// Writes the share to `url`, readable and writable by this user alone (as the fleet loader
    /// requires).
    func write(to url: URL) throws {
        _ = FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600])
        try JSONEncoder().encode(self).write(to: url)
    }

    /// The format version `SimulatedFleetState` saves, read from its own encoding of an empty
    /// fleet, so that a share is written in whatever version the loader expects.
    private struct SavedFormat: Decodable {
        let formatVersion: Int

        static func version(of state: SimulatedFleetState) throws -> Int {
            let empty = try JSONEncoder().encode(SimulatedFleetState(currentTime: state.currentTime))
            return try JSONDecoder().decode(SavedFormat.self, from: empty).formatVersion
        }
    }
}
