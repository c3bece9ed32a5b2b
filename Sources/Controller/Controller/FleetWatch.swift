import Foundation
import Kernel
import Logging
import Reconciler
import Synchronization

/// The controller's watch of its fleet (design.md §12): one stream per watched node for the
/// life of the session, each feeding that node's copy (`WatchReceiver`), and the cache a pass
/// plans on (`ObservationCache`).
///
/// A node's copy stands for it only while its stream is live: a stream silent for three
/// progress intervals makes the node stale, and a stale node is read afresh. A stream that
/// ends is resumed from its copy's position (a replay from the agent's ring, or a snapshot);
/// one whose digest, epoch or boot ID disagrees with the copy is replaced by a snapshot. A
/// change that this controller did not make (drift) is told to `onDrift`, which wakes the loop.
/// The session follows its agents and its `local` and `netns:` nodes, whose netlink kernels it
/// keeps and sends progress for on the agents' interval (`LocalKernelPool`). Nodes whose kernel
/// has no watch (older agents, simulated kernels) are polled as before: the cache never stands
/// for them.
public final class FleetWatch: ObservationCache, Sendable {
    /// How often a watched kernel sends progress (the agent's interval, ~10 s; the session's
    /// `LocalKernelPool` sends its kernels' on the same).
    public let progressInterval: Duration
    private let clock: any ReconcilerClock
    private let logger: Logger
    /// Told the node after each message taken in and each stream that ended (a test's
    /// observer; nil in production).
    private let observer: (@Sendable (String) -> Void)?
    private let state = Mutex(State())

    private struct State {
        var receivers: [String: WatchReceiver] = [:]
        var tasks: [String: Task<Void, Never>] = [:]
        var unsupported: Set<String> = []
        var resumes: [String: Int] = [:]
        var changes = 0
        var onDrift: (@Sendable (String) -> Void)?
        var stopped = false
    }

    /// The longest wait before a stream that failed is opened again.
    static let retryCeiling: Duration = .seconds(30)

    public init(
        clock: any ReconcilerClock, progressInterval: Duration = .seconds(10), logger: Logger,
        observer: (@Sendable (String) -> Void)? = nil
    ) {
        self.observer = observer
        self.clock = clock
        self.progressInterval = progressInterval
        self.logger = logger
    }

    /// Tells `handler` the node of every drift from now on (one handler: the running loop's).
    public func onDrift(_ handler: @escaping @Sendable (String) -> Void) {
        state.withLock { $0.onDrift = handler }
    }

    /// Follows `nodes`, each through the kernel `kernel` gives for it at each opening of its
    /// stream: starts a stream for each node not followed yet, and stops following nodes not in
    /// `nodes`.
    public func follow(_ nodes: Set<String>, kernel: @escaping @Sendable (String) async throws -> any NodeKernel) {
        let stopping = state.withLock { state -> [Task<Void, Never>] in
            guard !state.stopped else { return [] }
            let gone = Set(state.tasks.keys).subtracting(nodes)
            let stopping = gone.compactMap { state.tasks.removeValue(forKey: $0) }
            for node in gone { state.receivers[node] = nil }
            // Each stream's task is made and kept under the lock, so that one that ends at once
            // (a kernel with no watch) finds itself there to remove.
            for node in nodes.subtracting(state.tasks.keys).subtracting(state.unsupported).sorted() {
                state.receivers[node] = state.receivers[node] ?? WatchReceiver(node: node)
                state.tasks[node] = Task { [weak self] in
                    guard let self else { return }
                    await self.stream(node, kernel: kernel)
                }
            }
            return stopping
        }
        for task in stopping { task.cancel() }
    }

    /// Stops every stream.
    public func stop() {
        let tasks = state.withLock { state in
            state.stopped = true
            defer { state.tasks = [:] }
            return Array(state.tasks.values)
        }
        for task in tasks { task.cancel() }
    }

    /// Each watched node as the watch knows it, for `status`.
    public var nodes: [WatchedNodeStatus] {
        let now = clock.now()
        return state.withLock { state in
            state.receivers.keys.sorted().map { node in
                let receiver = state.receivers[node]
                return WatchedNodeStatus(
                    node: node, live: receiver.map { isLive($0, now: now) } ?? false,
                    polled: state.unsupported.contains(node), lastMessageAt: receiver?.lastMessageAt,
                    lastChangeAt: receiver?.lastChangeAt, snapshots: receiver?.snapshots ?? 0,
                    digestMismatches: receiver?.digestMismatches ?? 0, resumes: state.resumes[node] ?? 0)
            }
        }
    }

    /// The watch in numbers, for metrics.
    public var summary: WatchSummary {
        let now = clock.now()
        return state.withLock { state in
            var summary = WatchSummary()
            summary.polled = state.unsupported.count
            summary.changes = state.changes
            summary.resumes = state.resumes.values.reduce(0, +)
            for receiver in state.receivers.values {
                summary.snapshots += receiver.snapshots
                summary.digestMismatches += receiver.digestMismatches
                guard !state.unsupported.contains(receiver.node) else { continue }
                if isLive(receiver, now: now) {
                    summary.live += 1
                    if let last = receiver.lastMessageAt {
                        summary.cacheAgeSeconds = max(summary.cacheAgeSeconds, now.timeIntervalSince(last))
                    }
                } else {
                    summary.stale += 1
                }
            }
            return summary
        }
    }

    /// Where the copy of `node` stands.
    public func position(of node: String) -> WatchPosition? {
        state.withLock { $0.receivers[node]?.position }
    }

    // MARK: ObservationCache

    public func cachedObservation(of node: String) -> NodeObservation? {
        let now = clock.now()
        return state.withLock { state in
            guard let receiver = state.receivers[node], isLive(receiver, now: now) else { return nil }
            return receiver.observation()
        }
    }

    public func adopt(_ observation: NodeObservation, of node: String) {
        let now = clock.now()
        state.withLock { state in state.receivers[node]?.adopt(observation, at: now) }
    }

    public func sending(to node: String) {
        state.withLock { state in state.receivers[node]?.sending() }
    }

    public func applied(to node: String, at position: WatchPosition?) {
        state.withLock { state in state.receivers[node]?.applied(at: position) }
    }

    // MARK: Streams

    /// Whether a copy stands for its node at `now`: it has a position and its stream spoke within
    /// three progress intervals.
    private func isLive(_ receiver: WatchReceiver, now: Date) -> Bool {
        guard receiver.position != nil, let last = receiver.lastMessageAt else { return false }
        return now.timeIntervalSince(last) <= 3 * progressInterval.timeInterval
    }

    /// Keeps one node's stream open until the watch stops following it.
    private func stream(_ node: String, kernel: @Sendable (String) async throws -> any NodeKernel) async {
        var snapshotNext = false
        var failures = 0
        while !Task.isCancelled {
            let from: WatchPosition? = snapshotNext ? nil : state.withLock { $0.receivers[node]?.position }
            snapshotNext = false
            do {
                guard let stream = try await kernel(node).watch(from: from) else {
                    markPolled(node, reason: "its kernel has no watch")
                    return
                }
                for try await message in stream {
                    if case .change(let seq, let change) = message {
                        logger.debug(
                            "watch change",
                            metadata: [
                                "node": "\(node)", "watch.seq": "\(seq)",
                                "watch.change": "\(change.isDeletion ? "delete" : "upsert")",
                                "watch.object": "\(change.object)",
                            ])
                    }
                    let now = clock.now()
                    let (action, drift) = state.withLock {
                        state -> (WatchReceiver.Action, (@Sendable (String) -> Void)?) in
                        if case .change = message { state.changes += 1 }
                        guard let action = state.receivers[node]?.receive(message, at: now) else { return (.none, nil) }
                        return (action, state.onDrift)
                    }
                    failures = 0
                    defer { observer?(node) }
                    switch action {
                    case .none: continue
                    case .drift:
                        logger.info("drift seen by the watch", metadata: ["node": "\(node)"])
                        drift?(node)
                        continue
                    case .resnapshot(let reason):
                        logger.notice(
                            "the watch asks for a snapshot", metadata: ["node": "\(node)", "reason": "\(reason)"])
                        snapshotNext = true
                    }
                    break
                }
                state.withLock { state in
                    state.receivers[node]?.streamEnded(resnapshot: snapshotNext)
                    state.resumes[node, default: 0] += 1
                }
                observer?(node)
            } catch KernelWatchError.unsupported(_, let reason) {
                markPolled(node, reason: reason)
                return
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                failures += 1
                state.withLock { state in
                    state.receivers[node]?.streamEnded(resnapshot: false)
                    state.resumes[node, default: 0] += 1
                }
                observer?(node)
                let delay = min(Duration.seconds(1 << min(failures - 1, 5)), Self.retryCeiling)
                logger.warning(
                    "the watch stream ended; opening it again",
                    metadata: ["node": "\(node)", "error": "\(error)", "retry.seconds": "\(delay.timeInterval)"])
                do {
                    try await clock.watch(until: clock.now().addingTimeInterval(delay.timeInterval))
                } catch {
                    return
                }
            }
        }
    }

    private func markPolled(_ node: String, reason: String) {
        logger.info("node is polled, not watched", metadata: ["node": "\(node)", "reason": "\(reason)"])
        state.withLock { state in
            state.unsupported.insert(node)
            state.tasks[node] = nil
        }
        observer?(node)
    }
}

/// One watched node as `status` shows it.
public struct WatchedNodeStatus: Sendable, Hashable {
    /// `live`, `stale` or `polled`, as `WatchRecord.state` spells it.
    public var state: String { polled ? "polled" : live ? "live" : "stale" }

    public let node: String
    /// Its stream spoke within three progress intervals and its copy has a position.
    public let live: Bool
    /// Its kernel has no watch: it is read at every pass.
    public let polled: Bool
    public let lastMessageAt: Date?
    public let lastChangeAt: Date?
    /// How many snapshots its copy was rebuilt from, how many a digest forced, and how many
    /// times its stream was opened again.
    public let snapshots: Int
    public let digestMismatches: Int
    public let resumes: Int
}
