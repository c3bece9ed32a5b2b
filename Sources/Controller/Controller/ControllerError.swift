import DesiredState
import Reconciler

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
    /// The Store holds no channel while kernels hold objects with Meshward's reqid, or agents
    /// serve certificates of a cluster CA the Store does not hold: the state database was lost,
    /// truncated or replaced. `owned` counts the objects per node; `foreignAgents` names the
    /// nodes whose agents hold another CA's certificate.
    case lostStore(directory: String, owned: [String: Int], foreignAgents: [String] = [])
    /// The spec names another cluster than the one the Store belongs to.
    case clusterMismatch(spec: String, store: String, directory: String)
    /// The spec removes more than half of the Store's channels and `--force` was not given.
    case massRemoval(removed: Int, held: Int, directory: String)
    /// A saved plan (`plan --out`) no longer describes what `apply` would do.
    /// `file` is nil for the plan shown at the confirmation prompt.
    case stalePlan(file: String?, reasons: [String])
    /// A saved plan file could not be read or is not a plan this version understands.
    case unreadablePlan(file: String, reason: String)
    /// The operator answered no (or nothing) at apply's confirmation prompt.
    case declined
    /// Another controller held the lease for the whole of `apply --lock-timeout`; nothing was
    /// changed. `waited` is in seconds.
    case leaseWaitTimedOut(LeaseWait, waited: Double)
    /// A Store on a database server needs the operator's master key file: it is never created there.
    case masterKeyFileRequired(store: String)
    /// The controller settings the Store holds (metadata `key`) are not settings this Meshward
    /// reads: `reason` names the setting and what is wrong with it.
    case unreadableSettings(key: String, reason: String)
    /// `plan --refresh=false` needs the spec the last `apply` recorded (metadata
    /// `applied.spec`), and the Store, which holds channels, holds none.
    case noAppliedSpec
    /// The spec the last `apply` recorded does not read or compile: `reason` says why.
    case unreadableAppliedSpec(reason: String)

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
        case .lostStore(let directory, let owned, let foreign):
            "the Store in \(directory) holds no channel, but "
                + [
                    owned.isEmpty ? nil : Self.ownedSummary(owned),
                    foreign.isEmpty ? nil : Self.foreignSummary(foreign),
                ]
                .compactMap { $0 }.joined(separator: ", and ")
                + ": the state database was lost, truncated or replaced. Restore state.sqlite from backup to keep "
                + "the history\(foreign.isEmpty ? "" : " and the cluster CA the agents trust"), or run "
                + "`meshward apply --force SPEC` to recover: every channel gets a new "
                + "generation make-before-break, the objects without a record are removed once nothing uses "
                + "them, and the history starts again"
                + (foreign.isEmpty
                    ? ""
                    : "; agents of the old CA must be given new credentials (`meshward agent credentials`, or a "
                        + "join token) before they are reached again")
        case .clusterMismatch(let spec, let store, let directory):
            "the spec is for cluster '\(spec)', but the Store in \(directory) belongs to cluster '\(store)': "
                + "nothing was changed. Pass the --state-dir of cluster '\(spec)', or fix `cluster:` in the spec"
        case .massRemoval(let removed, let held, _):
            "this spec removes \(removed) of the \(held) channels the Store holds (more than half): nothing was "
                + "changed. A flow or a spec file may be missing by mistake; run `meshward plan SPEC` to see what "
                + "goes, and pass --force if the removal is meant"
        case .stalePlan(let file, let reasons):
            (file.map { "the saved plan \($0) is out of date" }
                ?? "the plan shown moved on while apply waited for the answer")
                + ", nothing was changed: " + reasons.joined(separator: "; ")
                + (file == nil ? ". Run apply again" : ". Run `meshward plan --out FILE SPEC` again and review it")
        case .unreadablePlan(let file, let reason):
            "cannot use the saved plan \(file): \(reason)"
        case .declined:
            "apply cancelled: nothing was changed"
        case .leaseWaitTimedOut(let wait, let waited):
            "the Store's lease is held by \(wait.heldBy); waited \(Self.seconds(waited)) for it "
                + "(--lock-timeout \(SpecDuration.format(wait.timeout))) and nothing was changed: only one controller writes at a time. "
                + "Stop that controller, or run again with a longer --lock-timeout"
        case .masterKeyFileRequired(let store):
            "the Store at \(store) needs --master-key-file FILE: the 32-byte, mode 0600 master key every "
                + "controller of this Store shares (it never enters the database, and is never created there)"
        case .unreadableSettings(let key, let reason):
            "the controller settings in the Store (metadata \(key)) cannot be read: \(reason); nothing was changed. "
                + "A newer Meshward may have written them (run that one), or the database was altered (restore it "
                + "from backup)"
        case .noAppliedSpec:
            "plan --refresh=false compares the spec with what the last apply gave the kernels, and the Store "
                + "holds channels but not the spec that made them (an apply by an older Meshward, or only "
                + "targeted ones, recorded none); run plan without --refresh=false, or apply the spec once"
        case .unreadableAppliedSpec(let reason):
            "the spec the last apply recorded in the Store (metadata applied.spec) cannot be read: \(reason); "
                + "run plan without --refresh=false"
        }
    }

    /// `12s`, `1.5s`.
    static func seconds(_ value: Double) -> String {
        value.rounded() == value ? "\(Int(value))s" : String(format: "%.1fs", value)
    }

    /// `node a holds 4 objects, node b holds 2 objects with Meshward's reqid`.
    static func foreignSummary(_ nodes: [String]) -> String {
        let listed = nodes.prefix(5).joined(separator: ", ")
        let more = nodes.count > 5 ? " and \(nodes.count - 5) more" : ""
        return "the agents of \(nodes.count) node\(nodes.count == 1 ? "" : "s") serve certificates of a cluster CA "
            + "this Store does not hold: \(listed)\(more)"
    }

    static func ownedSummary(_ owned: [String: Int]) -> String {
        let total = owned.values.reduce(0, +)
        let nodes = owned.keys.sorted()
        let listed = nodes.prefix(5).map { "\($0) (\(owned[$0] ?? 0))" }.joined(separator: ", ")
        let more = nodes.count > 5 ? " and \(nodes.count - 5) more" : ""
        return "the kernels of \(nodes.count) node\(nodes.count == 1 ? "" : "s") hold \(total) object"
            + "\(total == 1 ? "" : "s") with Meshward's reqid: \(listed)\(more)"
    }
}
