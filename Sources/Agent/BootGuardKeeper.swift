import Foundation
import Kernel
import Logging
import MeshwardCore
import Synchronization

/// Keeps the agent's boot guard list (`boot-guard.json` in the agent directory) in step with its
/// kernel, and installs the guard policies at start.
///
/// Reads of the kernel may finish out of order (an observe and an apply run at once): each read
/// takes a ticket before it starts, and a read older than the last one applied is ignored.
final class BootGuardKeeper: Sendable {
    let node: String
    let directory: AgentDirectory?
    let logger: Logger
    private let state: Mutex<State>

    struct State {
        var entries: [BootGuardEntry]
        var issued: UInt64 = 0
        var applied: UInt64 = 0
    }

    init(node: String, directory: AgentDirectory?, logger: Logger) throws(AgentError) {
        self.node = node
        self.directory = directory
        self.logger = logger
        state = Mutex(State(entries: try directory?.readBootGuard() ?? []))
    }

    /// The entries as last derived (or read at start).
    var entries: [BootGuardEntry] { state.withLock { $0.entries } }

    /// A ticket for a kernel read about to start.
    func ticket() -> UInt64 {
        state.withLock { state in
            state.issued += 1
            return state.issued
        }
    }

    /// Derives the list from `observation` (read with `reqid` under `ticket`) and writes it when
    /// it changed. A write failure is logged and the list in memory kept as it was, so the next
    /// read retries.
    func follow(_ observation: NodeObservation, reqid: Reqid, ticket: UInt64) {
        let outcome: (before: Int, after: Int)? = state.withLock { state in
            guard ticket > state.applied else { return nil }
            let derived = BootGuard.derive(from: observation, reqid: reqid, previous: state.entries)
            guard derived != state.entries else {
                state.applied = ticket
                return nil
            }
            do {
                try directory?.writeBootGuard(derived)
            } catch {
                logger.error(
                    "could not write the boot guard list",
                    metadata: ["node": "\(node)", "reason": "\(error)"])
                return nil
            }
            let before = state.entries.count
            state.entries = derived
            state.applied = ticket
            return (before, derived.count)
        }
        if let outcome {
            logger.debug(
                "boot guard list follows the kernel",
                metadata: ["node": "\(node)", "guard.before": "\(outcome.before)", "guard.after": "\(outcome.after)"])
        }
    }

    /// Installs a guard policy for every listed selector that `kernel` (opened with the reqid of
    /// those entries) has no owned outbound policy for, and returns the policies installed.
    /// Failed operations are logged and left out; a kernel that cannot be read throws.
    func install(on kernel: any NodeKernel, deadline: ContinuousClock.Instant) async throws -> [SecurityPolicy] {
        let observation = try await kernel.observe(deadline: deadline)
        let missing = BootGuard.missingGuards(entries, reqid: kernel.reqid, observation: observation)
        guard !missing.isEmpty else { return [] }
        let results = try await kernel.apply(missing.map { .addPolicy($0) }, deadline: deadline)
        var installed: [SecurityPolicy] = []
        for result in results {
            guard case .addPolicy(let policy) = result.operation else { continue }
            if result.outcome.isApplied {
                installed.append(policy)
            } else {
                logger.warning(
                    "could not install a boot guard policy",
                    metadata: ["node": "\(node)", "policy": "\(policy)", "outcome": "\(result.outcome)"])
            }
        }
        return installed
    }

    /// Installs the guard of every reqid the list names on the kernel `open` gives for it (closed
    /// afterwards when `closing`), and logs what it did: the peers now guarded, or that every
    /// listed selector has its policy. A kernel that cannot be opened or read is logged as an
    /// error and skipped. Returns how many guard policies it installed.
    func installAll(
        timeout: Duration, closing: Bool = false, open: (Reqid) async throws -> any NodeKernel
    ) async -> Int {
        var installed: [SecurityPolicy] = []
        for reqid in reqids {
            do {
                let kernel = try await open(reqid)
                do {
                    installed += try await install(on: kernel, deadline: .now + timeout)
                } catch {
                    if closing { await kernel.close() }
                    throw error
                }
                if closing { await kernel.close() }
            } catch {
                logger.error(
                    "could not install the boot guard",
                    metadata: ["node": "\(node)", "reqid": "\(reqid)", "reason": "\(error)"])
            }
        }
        let listed = entries.count
        if installed.isEmpty {
            logger.info(
                "boot guard: every listed selector has its policy",
                metadata: ["node": "\(node)", "guard.listed": "\(listed)"])
        } else {
            let peers = Set(installed.map { $0.selector.destination.address }).sorted().map(\.description)
            logger.notice(
                "boot guard installed: traffic to these peers is dropped, never sent in plaintext, until the controller restores the channels",
                metadata: [
                    "node": "\(node)", "guard.installed": "\(installed.count)", "guard.listed": "\(listed)",
                    "guard.peers": "\(peers.joined(separator: ","))",
                ])
        }
        return installed.count
    }

    /// The reqids the list names, in order.
    var reqids: [Reqid] {
        Array(Set(entries.map(\.reqid.rawValue))).sorted().map { Reqid($0) }
    }
}

/// The boot guard of a host that joins by token (`agent run --join-token-file`): the list a
/// cloud-init wrote into the agent directory (`meshward agent boot-guard`), installed before the
/// host serves the enrollment, so that its applications' traffic toward peers whose channels
/// will enforce ESP is dropped, never sent in plaintext, until the controller installs the
/// channels and replaces the guards make-before-break.
public enum JoinBootGuard {
    /// Installs the guard policies `directory`'s list names that `node`'s kernel (through
    /// `connector` at `endpoint`) lacks; returns how many. No list, or an empty one, installs
    /// nothing. A list that cannot be read throws (the agent refuses to start: the file was
    /// written for it); a kernel that cannot be opened is logged, as at any start.
    public static func install(
        node: String, directory: AgentDirectory, connector: any KernelConnector, endpoint: NodeEndpoint,
        logger: Logger
    ) async throws(AgentError) -> Int {
        let keeper = try BootGuardKeeper(node: node, directory: directory, logger: logger)
        guard !keeper.entries.isEmpty else { return 0 }
        return await keeper.installAll(timeout: AgentService.kernelTimeout, closing: true) { reqid in
            try await connector.connect(node: node, endpoint: endpoint, reqid: reqid)
        }
    }
}
