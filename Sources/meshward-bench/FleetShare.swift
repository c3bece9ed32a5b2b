import Foundation
import KernelSimulator

/// Some nodes of a simulated fleet, with their kernels as they are, saved in the fleet file's
/// own format (`SimulatedFleet.load(from:)` reads it back as a fleet of these nodes alone).
///
/// An agents' child loads only its share, so that no child holds the whole fleet. Nothing is
/// lost by the split: the benchmark sends no simulated packets between nodes, so no node's
/// kernel needs another node's.
struct FleetShare {
    /// The nodes of the share, in the order `split` sorts them.
    let nodes: [String]
    /// The fleet with every other node removed.
    private let state: SimulatedFleetState

    /// Splits `state`'s nodes, sorted by name (numbers in names by value: `node-9` before
    /// `node-10`), into shares of at most `size` nodes each, in order: the first share has the
    /// first `size` names.
    static func split(_ state: SimulatedFleetState, size: Int) -> [FleetShare] {
        precondition(size > 0, "a share holds at least one node")
        let names = state.nodes.keys.sorted { $0.compare($1, options: .numeric) == .orderedAscending }
        return stride(from: 0, to: names.count, by: size).map { start in
            let nodes = Array(names[start..<min(start + size, names.count)])
            return FleetShare(nodes: nodes, state: state.restricted(to: Set(nodes)))
        }
    }

    /// Writes the share to `url`, readable and writable by this user alone (as the fleet loader
    /// requires).
    func write(to url: URL) throws {
        try state.save(to: url)
    }
}
