import Kernel

/// A failure of the agent or of talking to one, said so that an operator can act on it.
public enum AgentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The agent directory or one of its files lets other users read or change it.
    case insecurePermissions(path: String, mode: UInt32, fix: String)
    /// A file operation failed.
    case fileSystem(path: String, operation: String, errno: Int32)
    /// A credential file is missing or unreadable.
    case credentials(path: String, reason: String)
    /// An apply came with a lease epoch lower than one the agent already accepted: it is from a
    /// deposed controller.
    case staleEpoch(node: String, presented: UInt64, highest: UInt64)
    /// The agent refused a request: the wire versions the controller can be answered in and
    /// those the agent speaks share none.
    case controllerVersionRefused(node: String, agent: ClosedRange<UInt32>, controller: ClosedRange<UInt32>)
    /// The controller refused an agent's answer: it came in wire version `agent`, which the
    /// controller does not speak.
    case agentVersionRefused(node: String, agent: UInt32, controller: ClosedRange<UInt32>)
    /// `--listen` or a similar address is malformed.
    case invalidAddress(String)
    /// The boot guard list in the agent directory cannot be read.
    case bootGuard(path: String, reason: String)
    /// A joining agent stopped (SIGTERM, shutdown) before a controller enrolled it.
    case notEnrolled(node: String)
    /// The join token file cannot be used.
    case joinToken(path: String, reason: String)
    /// A certificate renewal of a node's agent did not complete; the agent keeps its certificate.
    case renewalFailed(node: String, reason: String)
    /// A listener could not bind its address, or stopped listening.
    case notListening

    public var description: String {
        switch self {
        case .insecurePermissions(let path, let mode, let fix):
            "\(path) has mode \(String(mode, radix: 8)), which lets other users read or change it; run '\(fix)' and retry"
        case .fileSystem(let path, let operation, let errno):
            "\(path): \(operation) failed: \(ErrnoName.name(errno))"
        case .credentials(let path, let reason):
            "\(path): \(reason); write the agent directory with `meshward agent credentials SPEC --node NAME --out DIR`"
        case .staleEpoch(let node, let presented, let highest):
            "agent of node \(node) refused an apply with lease epoch \(presented): it has already accepted epoch "
                + "\(highest), so the sender is a deposed controller"
        case .controllerVersionRefused(let node, let agent, let controller):
            "agent of node \(node) refused the request: the controller speaks agent wire \(Self.describe(controller)), "
                + "this agent speaks \(Self.describe(agent)), and they cannot talk; \(Self.upgradeAdvice)"
        case .agentVersionRefused(let node, let agent, let controller):
            "the agent of node \(node) answered in agent wire version \(agent), this controller speaks "
                + "\(Self.describe(controller)), and they cannot talk; \(Self.upgradeAdvice)"
        case .invalidAddress(let text):
            "invalid address '\(text)'; use ADDRESS:PORT, with an IPv6 address in brackets ([::1]:7443)"
        case .joinToken(let path, let reason):
            "join token file \(path): \(reason)"
        case .notEnrolled(let node):
            "the agent of node \(node) stopped before a controller enrolled it; its join token file is kept, and "
                + "the next `meshward agent run --join-token-file` makes a new key and tries again"
        case .renewalFailed(let node, let reason):
            "the certificate of node \(node)'s agent was not renewed: \(reason); the next apply or reconcile cycle "
                + "tries again"
        case .notListening:
            "the listener is not listening: it could not bind its address (taken, or not an address of this host), "
                + "or it stopped"
        case .bootGuard(let path, let reason):
            "\(path) \(reason); the agent installs no guard from it. Fix or delete the file (docs/agents.md, "
                + "\"The boot guard\") and start the agent again"
        }
    }

    /// `version 2`, or `versions 1 to 2`.
    static func describe(_ versions: ClosedRange<UInt32>) -> String {
        versions.count == 1
            ? "version \(versions.lowerBound)" : "versions \(versions.lowerBound) to \(versions.upperBound)"
    }

    static let upgradeAdvice =
        "upgrade the older of the two to a release that speaks the other's version (docs/deploy.md lists them)"
}
