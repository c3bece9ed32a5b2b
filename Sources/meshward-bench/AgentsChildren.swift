import Agent
import Foundation
import Identity
import KernelSimulator

/// The agents of a fleet spread over child processes of this executable, each running the agents
/// of at most `agentsPerChild` nodes, and the controller's view of them all: the port of every
/// node's agent and one set of controller credentials that every child's agents accept (every
/// child issues from the same cluster CA).
///
/// A process may hold at most 20,000 open files (the hard limit, root included), and an agent
/// costs its process a listener and the connection it accepts: one process cannot serve 10,000
/// agents. The children are stopped and waited for on every path: `finish()` when the benchmark
/// is done with them, `stop()` (from a `defer`) otherwise; a child whose parent dies sees its
/// standard input close and stops too.
final class AgentsChildren: Sendable {
    let children: [AgentsChild]
    /// The loopback port of every node's agent, whichever child runs it.
    let ports: [String: Int]
    let cluster: String
    /// The controller's credentials, from the CA every child issues from.
    let credentials: AgentCredentials
    /// How long each child took to start its agents (its own measure, from its fleet loaded to
    /// every agent listening), in the children's order.
    let agentStarts: [Duration]
    /// From the first child launched until the last one's agents listen (the fleet's shares
    /// written, the processes started, the shares loaded, the agents started side by side).
    let started: Duration
    private let directory: URL

    private init(
        children: [AgentsChild], ports: [String: Int], cluster: String, credentials: AgentCredentials,
        agentStarts: [Duration], started: Duration, directory: URL
    ) {
        self.children = children
        self.ports = ports
        self.cluster = cluster
        self.credentials = credentials
        self.agentStarts = agentStarts
        self.started = started
        self.directory = directory
    }

    /// Splits `fleet`'s nodes (sorted by name, `FleetShare.split`) into shares of at most `agentsPerChild`, starts a
    /// child on each, and returns once every agent listens. With `ca`, the agents' certificates
    /// come from it (a Store's); else from a CA made here for these children. When a child cannot
    /// be started, every child started so far is stopped before the error is thrown.
    static func start(
        fleet: SimulatedFleet, cluster: String, ca: ClusterCA? = nil, agentsPerChild: Int
    ) throws -> AgentsChildren {
        guard agentsPerChild > 0 else { throw BenchFailure("--agents-per-child must be at least 1") }
        let clock = ContinuousClock()
        let began = clock.now
        let ca = try ca ?? ClusterCA.create(cluster: cluster, now: Date())
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-bench-agents-\(UUID())")
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var children: [AgentsChild] = []
        do {
            let shares = FleetShare.split(fleet.state, size: agentsPerChild)
            for (index, share) in shares.enumerated() {
                children.append(
                    try AgentsChild.launch(
                        number: index + 1, siblings: shares.count, share: share, cluster: cluster, ca: ca,
                        directory: directory.appendingPathComponent("child-\(index + 1)")))
            }
            var ports: [String: Int] = [:]
            var agentStarts: [Duration] = []
            var credentials: AgentCredentials?
            for child in children {
                let handoff = try child.waitUntilReady()
                ports.merge(handoff.ports) { first, _ in first }
                agentStarts.append(.milliseconds(Int64(handoff.startSeconds * 1000)))
                credentials =
                    credentials
                    ?? AgentCredentials(
                        caCertificatePEM: handoff.caCertificatePEM, certificatePEM: handoff.certificatePEM,
                        privateKeyPEM: handoff.privateKeyPEM)
            }
            guard let credentials else { throw BenchFailure("the fleet has no node to serve") }
            return AgentsChildren(
                children: children, ports: ports, cluster: cluster, credentials: credentials,
                agentStarts: agentStarts, started: clock.now - began, directory: directory)
        } catch {
            for child in children { child.stop() }
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// Tells every child to stop its agents and exit, waits for each, and returns each one's
    /// peak memory in MiB, in the children's order. Every child is waited for even when one
    /// failed; the first failure is thrown then.
    func finish() throws -> [Double] {
        var peaks: [Double] = []
        var failure: (any Error)?
        for child in children {
            do {
                peaks.append(try child.finish())
            } catch {
                failure = failure ?? error
            }
        }
        try? FileManager.default.removeItem(at: directory)
        if let failure { throw failure }
        return peaks
    }

    /// Ends every child that `finish` did not, and waits until each has exited.
    func stop() {
        for child in children { child.stop() }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `body`; when it throws while a child has died, the error names the dead children
    /// (each with its exit status and its nodes), the likely cause of the failure.
    func reportingDeaths<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            let dead = children.compactMap { child in child.exitDescription.map { "\(child) \($0)" } }
            guard !dead.isEmpty else { throw error }
            throw BenchFailure("\(error); meanwhile \(dead.joined(separator: "; "))")
        }
    }
}
