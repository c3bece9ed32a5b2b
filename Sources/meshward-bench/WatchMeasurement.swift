import Controller
import DesiredState
import Foundation
import Kernel
import Logging
import MeshwardCore
import MeshwardTestKit
import Reconciler
import Synchronization

/// The watch's figures over the benchmark's agents (design.md §12), measured by a controller
/// that follows every agent's kernel with one stream (`FleetWatch`) and plans on that cache:
///
/// - the start: from no stream to every stream live and every node's copy current (the first
///   cycle's fresh pass included), as after a controller restart, with its CPU and the
///   controller's resident memory it added, per agent;
/// - the steady pass planned on the cache (it calls no agent);
/// - the controller's CPU at rest, streams open, per minute of wall time;
/// - a pass after 1, 10, 100 and 1,000 nodes changed out of band (each lost an owned policy):
///   its wall time, CPU and the nodes it read afresh;
/// - event-to-cache latency: changes made by the agents' children to their own kernels at a
///   steady rate (a policy deleted and put back in one batch, `ChurnRequest`), from the start of
///   each batch until the controller's copy of that node reached the batch's last change.
///
/// The changes of the changed-nodes passes go through a separate connection to each agent, so
/// the watch sees them as drift, as it would a change by hand.
struct WatchMeasurement {
    let intent: FleetIntent
    let kernels: BenchAgentKernels
    let store: ScratchGenerationStore
    let clock: ManualClock
    let reqid: Reqid
    let logger: Logger
    let observeParallelism: Int
    let repeats: Int
    /// How long the controller rests for the CPU-at-rest figure.
    let rest: Duration
    /// The event rate and how many changes the latency is measured over.
    let eventsPerSecond: Int
    let events: Int

    struct Figures {
        var start: (wall: Duration, cpu: Duration)
        var residentMiBAdded: Double
        var steady: (wall: Duration, cpu: Duration)
        var restCPUPerMinute: Duration
        var changed: [(nodes: Int, wall: Duration, cpu: Duration, readAfresh: Int, operations: Int)]
        var latencyP50: Duration
        var latencyP99: Duration
        var latencyCount: Int
    }

    func run() async throws -> Figures {
        let nodes = Set(intent.nodes.map(\.name))
        let arrivals = ArrivalLog()
        let watch = FleetWatch(
            clock: SystemClock(), logger: logger, observer: { node in arrivals.messageArrived(node) })
        arrivals.watch.withLock { $0 = watch }
        defer { watch.stop() }
        let reconciler = FleetReconciler(
            store: store, kernels: kernels, reqid: reqid, clock: clock, logger: logger,
            observeParallelism: observeParallelism, cache: watch)

        let residentBefore = Self.residentMiB()
        let start = try await measureBoth {
            watch.follow(nodes) { node in try await kernels.kernel(for: node) }
            var records = try store.loadChannels()
            _ = try await reconciler.runPass(number: 0, intent: intent, records: &records)
            try await Self.waitUntil(seconds: 120, "every node's copy current") {
                nodes.allSatisfy { watch.cachedObservation(of: $0) != nil }
            }
        }
        let residentAdded = Self.residentMiB() - residentBefore

        var steadySamples: [(Duration, Duration)] = []
        for number in 1...repeats {
            var records = try store.loadChannels()
            let measured = try await measureBoth {
                try await reconciler.runPass(number: number, intent: intent, records: &records, planningOnCache: true)
            }
            guard measured.result.results.isEmpty, measured.result.freshlyRead.isEmpty else {
                throw BenchFailure(
                    "a steady pass on the cache sent \(measured.result.results.count) operations and read "
                        + "\(measured.result.freshlyRead.count) nodes afresh")
            }
            steadySamples.append((measured.wall, measured.cpu))
        }
        let steady = steadySamples.sorted { $0.0 < $1.0 }[steadySamples.count / 2]

        let restCPU = processCPUTime()
        try await Task.sleep(for: rest)
        let restPerMinute = (processCPUTime() - restCPU) * (60 / rest.seconds)

        // Separate connections, so that the watch takes their changes for drift.
        let changer = BenchAgentKernels(nodes: nodes, children: kernels.children, reqid: reqid, logger: logger)
        defer { Task { await changer.close() } }
        var changed: [(Int, Duration, Duration, Int, Int)] = []
        let sorted = nodes.sorted()
        for count in [1, 10, 100, 1_000] where count <= sorted.count / 2 {
            let targets = Array(sorted.shuffled().prefix(count))
            var positions: [String: WatchPosition] = [:]
            try await withThrowingTaskGroup(of: (String, WatchPosition?).self) { group in
                for node in targets {
                    group.addTask {
                        let kernel = try await changer.kernel(for: node)
                        let reading = try await kernel.observe()
                        guard let policy = reading.policies.first else { throw BenchFailure("\(node) has no policy") }
                        let batch = try await kernel.applyReportingPosition(
                            [.deletePolicy(policy.identifier)], deadline: .now + .seconds(30))
                        return (node, batch.position)
                    }
                }
                for try await (node, position) in group { positions[node] = position }
            }
            try await Self.waitUntil(seconds: 60, "the watch to see \(count) changes") {
                positions.allSatisfy { node, position in
                    watch.position(of: node).map { $0.seq >= position.seq } ?? false
                }
            }
            var records = try store.loadChannels()
            let measured = try await measureBoth {
                try await reconciler.runPass(
                    number: 100 + count, intent: intent, records: &records, planningOnCache: true)
            }
            guard measured.result.results.count >= count else {
                throw BenchFailure("a pass after \(count) changes sent \(measured.result.results.count) operations")
            }
            changed.append(
                (count, measured.wall, measured.cpu, measured.result.freshlyRead.count, measured.result.results.count))
            // Let the repair reach the copies before the next size.
            try await Self.waitUntil(seconds: 60, "every node's copy current again") {
                nodes.allSatisfy { watch.cachedObservation(of: $0) != nil }
            }
        }

        // Event-to-cache latency: each child deletes a policy of its own kernels and puts it back,
        // at its share of the rate, interleaved with its siblings, so that the controller's
        // process does nothing but watch (as when an operator or a kernel changes a host).
        arrivals.recording.withLock { $0 = true }
        let children = kernels.children.children
        let paceNanos = UInt64(1_000_000_000 / max(1, eventsPerSecond))
        let firstAt = ChurnRequest.monotonicNanos() + 200_000_000
        let made = try await withThrowingTaskGroup(of: [ChurnRequest.Change].self) { group in
            for (index, child) in children.enumerated() {
                let share = events / children.count + (index < events % children.count ? 1 : 0)
                guard share > 0 else { continue }
                let request = ChurnRequest(
                    count: share, intervalNanos: paceNanos * UInt64(children.count),
                    startNanos: firstAt + paceNanos * UInt64(index), reqid: reqid)
                group.addTask { try await child.churn(request) }
            }
            var made: [ChurnRequest.Change] = []
            for try await changes in group { made += changes }
            return made
        }
        try await Self.waitUntil(seconds: 60, "the watch to see the children's changes") {
            made.allSatisfy { change in watch.position(of: change.node).map { $0.seq >= change.seq } ?? false }
        }
        let latencies = made.compactMap { change -> Duration? in
            guard let arrived = arrivals.firstArrival(of: change.node, atLeast: change.seq) else { return nil }
            return .nanoseconds(Int64(arrived) - Int64(change.startedNanos))
        }.sorted()
        guard !latencies.isEmpty else { throw BenchFailure("no change's arrival was recorded") }
        return Figures(
            start: (start.wall, start.cpu), residentMiBAdded: residentAdded, steady: steady,
            restCPUPerMinute: restPerMinute, changed: changed,
            latencyP50: latencies[latencies.count / 2],
            latencyP99: latencies[min(latencies.count - 1, latencies.count * 99 / 100)],
            latencyCount: latencies.count)
    }

    /// Waits, polling every 10 ms, until `condition` holds; fails naming `what` after `seconds`.
    static func waitUntil(seconds: Int, _ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw BenchFailure("waited \(seconds) s for \(what)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The process's resident memory now (`VmRSS` of /proc/self/status), in MiB.
    static func residentMiB() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
        else { return 0 }
        return kib / 1024
    }
}

/// When the watch's copy of each node reached each position, while recording.
final class ArrivalLog: Sendable {
    let watch = Mutex<FleetWatch?>(nil)
    let recording = Mutex(false)
    /// Arrival times on `CLOCK_MONOTONIC`, in nanoseconds, which the agents' children share.
    private let arrivals = Mutex<[String: [(seq: UInt64, at: UInt64)]]>([:])

    func messageArrived(_ node: String) {
        guard recording.withLock({ $0 }), let watch = watch.withLock({ $0 }),
            let position = watch.position(of: node)
        else { return }
        let now = ChurnRequest.monotonicNanos()
        arrivals.withLock { arrivals in
            if arrivals[node]?.last?.seq != position.seq { arrivals[node, default: []].append((position.seq, now)) }
        }
    }

    /// The first time the copy of `node` stood at `seq` or later.
    func firstArrival(of node: String, atLeast seq: UInt64) -> UInt64? {
        arrivals.withLock { $0[node]?.first { $0.seq >= seq }?.at }
    }
}
