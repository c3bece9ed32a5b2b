import DesiredState

/// Why a command could not run, in words an operator can act on.
public enum ControllerError: Error, Sendable, CustomStringConvertible {
    /// The spec did not validate; the diagnostics say where.
    case invalidSpec([Diagnostic])
    /// `rekey` named something the spec does not have.
    case selection(String)
    /// The state directory holds no state yet.
    case noState(directory: String)

    public var description: String {
        switch self {
        case .invalidSpec(let diagnostics):
            diagnostics.map(\.description).joined(separator: "\n")
        case .selection(let message):
            message
        case .noState(let directory):
            "no Meshward state in \(directory): run `meshward apply SPEC` first, or pass --state-dir"
        }
    }
}
