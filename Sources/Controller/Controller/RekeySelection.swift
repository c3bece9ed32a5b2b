import DesiredState
import MeshwardCore
import Reconciler

/// Which channels `meshward rekey` rotates.
public enum RekeySelection: Sendable, Hashable {
    /// Every channel of the spec.
    case all
    /// Every channel to or from a node.
    case node(String)
    /// The channels from one node to another (both families).
    case channel(from: String, to: String)

    /// The channels of `intent` the selection names; throws when it names nothing there.
    public func channels(in intent: FleetIntent) throws -> [ChannelID] {
        let selected: [ChannelID]
        switch self {
        case .all:
            selected = intent.channels.map(\.id)
        case .node(let name):
            guard intent.node(named: name) != nil else {
                throw ControllerError.selection("no node named \(name) in the spec")
            }
            selected = intent.channels.map(\.id).filter { $0.from == name || $0.to == name }
        case .channel(let from, let to):
            selected = intent.channels.map(\.id).filter { $0.from == from && $0.to == to }
            if selected.isEmpty {
                throw ControllerError.selection(
                    "the spec has no channel from \(from) to \(to) (no flow connects them, or a name is wrong)")
            }
        }
        return selected
    }
}

extension RekeySelection {
    /// The selector as `meshward rekey` takes it (`--all`, `--node web-1`, `--channel web-1:app-1`),
    /// for the history.
    public var commandLine: String {
        switch self {
        case .all: "--all"
        case .node(let name): "--node \(name)"
        case .channel(let from, let to): "--channel \(from):\(to)"
        }
    }
}
