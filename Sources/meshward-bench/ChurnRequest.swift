import Foundation
import Kernel
import KernelSimulator
import MeshwardCore

/// Changes an agents' child makes to its own simulated kernels at a steady pace, for the watch's
/// event-to-cache latency: each change deletes one of the node's owned policies and puts it
/// back in one batch, through the kernel the child's agent watches, so that the agent streams
/// both changes to the controller as drift. The child's nodes take their turns in name order.
///
/// Sent to the child as one line of its standard input:
/// `churn COUNT INTERVAL_NS START_NS REQID`, START_NS on `CLOCK_MONOTONIC`, which every process
/// of the machine shares; the child writes the changes it made to `churned.json`.
struct ChurnRequest: Sendable, Equatable {
    /// How many changes to make.
    var count: Int
    /// The time between two changes, in nanoseconds.
    var intervalNanos: UInt64
    /// When the first change is made, in `CLOCK_MONOTONIC` nanoseconds.
    var startNanos: UInt64
    /// The owner whose policies are changed.
    var reqid: Reqid

    /// One change made: its node, the watch position it left, and when its batch started.
    struct Change: Codable, Sendable {
        var node: String
        var seq: UInt64
        var startedNanos: UInt64
    }

    var line: String { "churn \(count) \(intervalNanos) \(startNanos) \(reqid.rawValue)" }

    init(count: Int, intervalNanos: UInt64, startNanos: UInt64, reqid: Reqid) {
        self.count = count
        self.intervalNanos = intervalNanos
        self.startNanos = startNanos
        self.reqid = reqid
    }

    /// Reads `line`; nil when it is not a churn request.
    init?(line: String) {
        let words = line.split(separator: " ")
        guard words.count == 5, words[0] == "churn", let count = Int(words[1]),
            let interval = UInt64(words[2]), let start = UInt64(words[3]), let reqid = UInt32(words[4])
        else { return nil }
        self.init(count: count, intervalNanos: interval, startNanos: start, reqid: Reqid(reqid))
    }

    /// Makes the changes in `fleet`, each at its time (late ones at once), and returns them.
    func run(on fleet: SimulatedFleet) async throws -> [Change] {
        let nodes = fleet.state.nodes.keys.sorted()
        guard !nodes.isEmpty else { return [] }
        var policies: [String: SecurityPolicy] = [:]
        var changes: [Change] = []
        changes.reserveCapacity(count)
        for index in 0..<count {
            let node = nodes[index % nodes.count]
            let kernel = fleet.kernel(for: node, reqid: reqid)
            if policies[node] == nil {
                guard let policy = try await kernel.observe().policies.first else {
                    throw BenchFailure("\(node) has no policy of reqid \(reqid) to change")
                }
                policies[node] = policy
            }
            guard let policy = policies[node] else { continue }
            let due = startNanos + intervalNanos * UInt64(index)
            let now = Self.monotonicNanos()
            if due > now { try await Task.sleep(nanoseconds: due - now) }
            let started = Self.monotonicNanos()
            let batch = try await kernel.applyReportingPosition(
                [.deletePolicy(policy.identifier), .addPolicy(policy)], deadline: .now + .seconds(30))
            guard let seq = batch.position?.seq else { throw BenchFailure("\(node) is not watched by its agent") }
            changes.append(Change(node: node, seq: seq, startedNanos: started))
        }
        return changes
    }

    /// `CLOCK_MONOTONIC` now, in nanoseconds: the same clock in every process of the machine.
    static func monotonicNanos() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}
