import DesiredState

/// Why a command could not run, in words an operator can act on.
public enum ControllerError: Error, Sendable, CustomStringConvertible {
    /// The spec did not validate; the diagnostics say where.
    case invalidSpec([Diagnostic])
    /// `rekey` named something the spec does not have.
    case selection(String)
    /// The state directory holds no state yet.
    case noState(directory: String)
    /// The state directory, or a file in it, exists but this user may not read it.
    case permissionDenied(path: String)
    /// The state directory or a file in it could not be examined for another reason.
    case stateUnreadable(path: String, reason: String)
    /// `status --node` named a node the fleet does not have.
    case unknownNode(String, known: [String])
    /// The Store holds no channel while kernels hold objects with Meshward's reqid: the state
    /// database was lost, truncated or replaced. `owned` counts the objects per node.
    case lostStore(directory: String, owned: [String: Int])

    public var description: String {
        switch self {
        case .invalidSpec(let diagnostics):
            diagnostics.map(\.description).joined(separator: "\n")
        case .selection(let message):
            message
        case .noState(let directory):
            "no Meshward state in \(directory): run `meshward apply SPEC` first, or pass --state-dir"
        case .permissionDenied(let path):
            "permission denied: cannot read \(path); run Meshward as the user that owns the state directory "
                + "(it is 0700 on purpose), or pass --state-dir"
        case .stateUnreadable(let path, let reason):
            "cannot read \(path): \(reason)"
        case .unknownNode(let node, let known):
            "no node '\(node)' in the fleet; known nodes: "
                + (known.isEmpty ? "none (run `meshward apply SPEC` first)" : known.joined(separator: ", "))
        case .lostStore(let directory, let owned):
            "the Store in \(directory) holds no channel, but "
                + Self.ownedSummary(owned)
                + ": the state database was lost, truncated or replaced. Restore state.sqlite from backup to keep "
                + "the history, or run `meshward apply --force SPEC` to recover: every channel gets a new "
                + "generation make-before-break, the objects without a record are removed once nothing uses "
                + "them, and the history starts again"
        }
    }

    /// `node a holds 4 objects, node b holds 2 objects with Meshward's reqid`.
    static func ownedSummary(_ owned: [String: Int]) -> String {
        let total = owned.values.reduce(0, +)
        let nodes = owned.keys.sorted()
        let listed = nodes.prefix(5).map { "\($0) (\(owned[$0] ?? 0))" }.joined(separator: ", ")
        let more = nodes.count > 5 ? " and \(nodes.count - 5) more" : ""
        return "the kernels of \(nodes.count) node\(nodes.count == 1 ? "" : "s") hold \(total) object"
            + "\(total == 1 ? "" : "s") with Meshward's reqid: \(listed)\(more)"
    }
}
