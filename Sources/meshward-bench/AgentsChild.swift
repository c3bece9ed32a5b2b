import Agent
import AgentTestSupport
import Foundation
import Identity
import KernelSimulator

/// One child process of this executable (`agents --serve-fleet`) that runs the agents of a share
/// of the fleet's nodes, and the controller's view of it. The ports of its agents and the
/// controller's credentials come from a 0600 file in the child's 0700 directory (never from its
/// output, which carries only `ready` and, at the end, its peak memory).
///
/// `AgentsChildren` starts and stops these; a child is launched first and read once it says it
/// is ready, so that several children start their agents side by side.
final class AgentsChild: Sendable {
    /// The child's place among its siblings, from 1.
    let number: Int
    /// How many children serve the fleet together.
    let siblings: Int
    /// The nodes whose agents this child runs, in the order `FleetShare.split` sorts them.
    let nodes: [String]
    private let process: Process
    private let input: Pipe
    private let output: Pipe
    private let directory: URL

    private init(
        number: Int, siblings: Int, nodes: [String], process: Process, input: Pipe, output: Pipe, directory: URL
    ) {
        self.number = number
        self.siblings = siblings
        self.nodes = nodes
        self.process = process
        self.input = input
        self.output = output
        self.directory = directory
    }

    /// What the child writes for the controller.
    struct Handoff: Codable {
        var ports: [String: Int]
        var caCertificatePEM: String
        var certificatePEM: String
        var privateKeyPEM: String
        var startSeconds: Double
    }

    /// The cluster CA the child issues its agents' certificates from: the controller's (a
    /// Store's), or one the benchmark made for all its children, so that one set of controller
    /// credentials reaches every child's agents.
    struct Authority: Codable {
        var certificatePEM: String
        var privateKeyDER: [UInt8]
    }

    /// Saves `share` (the nodes this child serves, with their kernels) and `ca` into `directory`
    /// (made 0700, each file 0600) and starts the child on them; returns at once; the caller
    /// reads the child with `waitUntilReady()`.
    static func launch(
        number: Int, siblings: Int, share: FleetShare, cluster: String, ca: ClusterCA, directory: URL
    ) throws -> AgentsChild {
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let fleetFile = directory.appendingPathComponent("fleet.sqlite")
        try share.write(to: fleetFile)
        let caFile = directory.appendingPathComponent("ca.json")
        _ = FileManager.default.createFile(atPath: caFile.path, contents: nil, attributes: [.posixPermissions: 0o600])
        try JSONEncoder().encode(Authority(certificatePEM: ca.certificatePEM, privateKeyDER: ca.privateKeyDER))
            .write(to: caFile)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = [
            "agents", "--serve-fleet", fleetFile.path, "--serve-directory", directory.path, "--cluster-name", cluster,
        ]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        return AgentsChild(
            number: number, siblings: siblings, nodes: share.nodes, process: process, input: input, output: output,
            directory: directory)
    }

    /// Waits until every agent of the child listens and returns what it wrote for the
    /// controller. A child that exits first is waited for and reported with its exit status and
    /// its nodes.
    func waitUntilReady() throws -> Handoff {
        guard let line = Self.readLine(from: output.fileHandleForReading), line == "ready" else {
            process.waitUntilExit()
            throw BenchFailure("\(self) \(exitDescription ?? "stopped answering") before its agents listened")
        }
        return try JSONDecoder().decode(
            Handoff.self, from: Data(contentsOf: directory.appendingPathComponent("controller.json")))
    }

    /// Tells the child to stop its agents and exit, waits for it, and returns its peak memory in
    /// MiB. A child that exited before is reported with its exit status and its nodes.
    func finish() throws -> Double {
        try input.fileHandleForWriting.close()
        let peak = Self.readLine(from: output.fileHandleForReading).flatMap(Double.init)
        process.waitUntilExit()
        guard let peak else {
            throw BenchFailure("\(self) \(exitDescription ?? "exited") without reporting its memory")
        }
        return peak
    }

    /// Asks the child for `request`'s changes to its own kernels (the latency figure's
    /// generator, in the agents' process, so that the controller's process does nothing but
    /// watch) and waits, off the caller's thread, until it made them all.
    func churn(_ request: ChurnRequest) async throws -> [ChurnRequest.Change] {
        try input.fileHandleForWriting.write(contentsOf: Data((request.line + "\n").utf8))
        let output = output.fileHandleForReading
        let answer = await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            Thread.detachNewThread { continuation.resume(returning: Self.readLine(from: output)) }
        }
        guard answer == "churned" else {
            throw BenchFailure("\(self) \(exitDescription ?? "stopped answering") while changing its kernels")
        }
        return try JSONDecoder().decode(
            [ChurnRequest.Change].self, from: Data(contentsOf: directory.appendingPathComponent("churned.json")))
    }

    /// Ends the child if `finish` did not, and waits until it has exited.
    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    /// How the child ended (`exited with status 1`, `was killed by signal 9`); nil while it runs.
    var exitDescription: String? {
        guard !process.isRunning else { return nil }
        switch process.terminationReason {
        case .exit: return "exited with status \(process.terminationStatus)"
        case .uncaughtSignal: return "was killed by signal \(process.terminationStatus)"
        @unknown default: return "ended (status \(process.terminationStatus))"
        }
    }

    /// This process's peak resident memory in MiB since it was executed (`VmHWM` of
    /// `/proc/self/status`). Not `ru_maxrss`: Linux carries that over `exec` from the process
    /// that forked, so a child of a large controller would report at least the controller's size.
    private static func peakResidentMiBSinceExec() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kib = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
        else { return BenchmarkReport.peakResidentMiB() }
        return kib / 1024
    }

    private static func readLine(from handle: FileHandle) -> String? {
        var bytes: [UInt8] = []
        while true {
            let byte = handle.readData(ofLength: 1)
            guard let first = byte.first else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if first == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(first)
        }
    }

    /// The child: one agent per node of the saved share, until standard input closes.
    static func serve(fleetFile: String, directory: String, cluster: String) async throws {
        let fleet = try SimulatedFleet.load(from: URL(fileURLWithPath: fleetFile))
        let caFile = URL(fileURLWithPath: directory).appendingPathComponent("ca.json")
        let ca =
            try FileManager.default.fileExists(atPath: caFile.path)
            ? JSONDecoder().decode(Authority.self, from: Data(contentsOf: caFile)).clusterCA(cluster: cluster) : nil
        let clock = ContinuousClock()
        let start = clock.now
        let agents = try await InProcessAgents.start(
            nodes: fleet.state.nodes.keys.sorted(), cluster: cluster, connector: SimulatedConnector(fleet: fleet),
            ca: ca, executor: nil)
        let handoff = Handoff(
            ports: agents.ports, caCertificatePEM: agents.controller.caCertificatePEM,
            certificatePEM: agents.controller.certificatePEM, privateKeyPEM: agents.controller.privateKeyPEM,
            startSeconds: (clock.now - start).seconds)
        let file = URL(fileURLWithPath: directory).appendingPathComponent("controller.json")
        _ = FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600])
        try JSONEncoder().encode(handoff).write(to: file)
        Self.say("ready")
        // Serve until the controller closes our standard input; a `churn` line on it asks for
        // changes to this child's kernels (`ChurnRequest`), answered by `churned`.
        // Read with read(2), not stdio: a thread blocked in stdio's `readLine` holds stdin's
        // lock, which `fflush(nil)` (and every other stdio call that flushes all) waits for.
        let lines = AsyncStream<String> { continuation in
            Thread.detachNewThread {
                let input = FileHandle.standardInput
                while let line = readLine(from: input) { continuation.yield(line) }
                continuation.finish()
            }
        }
        for await line in lines {
            guard let request = ChurnRequest(line: line) else { continue }
            let churned = try await request.run(on: fleet)
            let churnFile = URL(fileURLWithPath: directory).appendingPathComponent("churned.json")
            try JSONEncoder().encode(churned).write(to: churnFile)
            Self.say("churned")
        }
        await agents.stop()
        Self.say(String(format: "%.1f", peakResidentMiBSinceExec()))
    }

    /// Writes `line` to standard output at once, with write(2): no stdio lock is taken.
    private static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}

extension AgentsChild: CustomStringConvertible {
    /// `agents' child 2 of 4 (2500 nodes, node-2500 ... node-4999, pid 1234)`: the first and
    /// last of its nodes, which with the count tell which nodes went with it.
    var description: String {
        let range = nodes.count > 1 ? "\(nodes[0]) ... \(nodes[nodes.count - 1])" : nodes.first ?? "none"
        return
            "agents' child \(number) of \(siblings) (\(nodes.count) nodes, \(range), pid \(process.processIdentifier))"
    }
}

extension AgentsChild.Authority {
    /// The authority as a CA the child can issue from.
    func clusterCA(cluster: String) throws -> ClusterCA {
        try ClusterCA(cluster: cluster, certificatePEM: certificatePEM, privateKeyDER: privateKeyDER)
    }
}
