import MeshwardCore
import Synchronization

/// A watched kernel's owned objects as a versioned model (design.md §12): an `epoch` drawn at
/// random when the model starts, a `seq` that grows by one for each change of an owned object,
/// a ring of the most recent changes, and the streams that follow it.
///
/// Its source (a netlink socket subscribed to the XFRM multicast groups, or the simulated
/// kernel) reports each change with `record(_:)`, and a full dump with `resynchronize(to:)`,
/// which emits the differences as ordinary changes: the model's first fill, a recovery after
/// the socket lost events (`ENOBUFS`), and every fresh read.
///
/// `watch(from:)` replays from the ring when the position asked for is in it, or sends a
/// snapshot; then it sends each change as it is recorded. Each stream's queue is bounded: a
/// stream whose receiver does not keep up ends with `KernelWatchError.overflow` naming the last
/// position it queued, never dropping a change silently.
public final class KernelWatchModel: Sendable {
    /// The node, for messages.
    public let node: String
    /// This model's epoch.
    public let epoch: UInt64
    /// How many recent changes the ring keeps for resuming streams.
    public let ringCapacity: Int
    /// How many messages one stream may have queued beyond its snapshot or replay.
    public let streamCapacity: Int

    private let state: Mutex<State>

    private struct State {
        var objects = WatchedObjects()
        var seq: UInt64 = 0
        /// The most recent changes, oldest first: `ring[i]` has seq `seq - ring.count + 1 + i`.
        var ring: [KernelChange] = []
        var bootID: String?
        var statistics: [String: UInt64] = [:]
        var streams: [Int: Subscriber] = [:]
        var nextStream = 0
        var resynchronizations = 0
        var lostEventRecoveries = 0
        var overflows = 0
        /// Streams ended under the lock, finished once it is released: finishing a stream runs
        /// its `onTermination`, which takes the lock again.
        var ending: [(AsyncThrowingStream<WatchMessage, any Error>.Continuation, KernelWatchError)] = []
    }

    private struct Subscriber {
        let continuation: AsyncThrowingStream<WatchMessage, any Error>.Continuation
        let capacity: Int
        /// The statistics last sent on this stream, so progress carries them only when changed.
        var statisticsSent: [String: UInt64]?
    }

    /// Ring of at least 4,096 changes: a rekey of a node with 500 channels is about 3,000.
    public static let defaultRingCapacity = 4_096
    /// Queue of 8,192 messages per stream beyond its snapshot.
    public static let defaultStreamCapacity = 8_192

    public init(
        node: String, epoch: UInt64 = .random(in: 1...UInt64.max), bootID: String? = nil,
        ringCapacity: Int = defaultRingCapacity, streamCapacity: Int = defaultStreamCapacity
    ) {
        precondition(ringCapacity > 0 && streamCapacity > 0)
        self.node = node
        self.epoch = epoch
        self.ringCapacity = ringCapacity
        self.streamCapacity = streamCapacity
        var initial = State()
        initial.bootID = bootID
        self.state = Mutex(initial)
    }

    /// Where the model stands.
    public var position: WatchPosition { WatchPosition(epoch: epoch, seq: state.withLock { $0.seq }) }

    /// The digest of every owned object now (`WatchDigest`).
    public var digest: UInt64 { state.withLock { $0.objects.digest } }

    /// The owned objects now.
    public var objects: WatchedObjects { state.withLock { $0.objects } }

    /// How many streams follow the model.
    public var streamCount: Int { state.withLock { $0.streams.count } }

    /// How many dumps were diffed against the model (`resynchronize(to:)`), and how many of
    /// those recovered events the source lost.
    public var resynchronizations: (all: Int, lostEvents: Int) {
        state.withLock { ($0.resynchronizations, $0.lostEventRecoveries) }
    }

    /// How many streams ended because their queue filled.
    public var overflows: Int { state.withLock { $0.overflows } }

    /// Records one change the source reported; returns its seq, or nil when it changed
    /// nothing (an object reported as it already was, a deletion of one not held).
    @discardableResult
    public func record(_ change: KernelChange) -> UInt64? {
        withState { state in Self.record(change, in: &state, node: node, epoch: epoch, ringCapacity: ringCapacity) }
    }

    /// Diffs a full dump of the owned objects against the model and records the differences as
    /// ordinary changes; returns the position after them. `lostEvents` says the source lost
    /// events (`ENOBUFS`), which is counted apart.
    @discardableResult
    public func resynchronize(to dump: WatchedObjects, lostEvents: Bool = false) -> WatchPosition {
        withState { state in
            state.resynchronizations += 1
            if lostEvents { state.lostEventRecoveries += 1 }
            for change in state.objects.changes(to: dump) {
                Self.record(change, in: &state, node: node, epoch: epoch, ringCapacity: ringCapacity)
            }
            return WatchPosition(epoch: epoch, seq: state.seq)
        }
    }

    /// Sets the host's boot ID that snapshots and progress report.
    public func setBootID(_ bootID: String?) {
        state.withLock { $0.bootID = bootID }
    }

    /// Sends every stream its progress: the position, the boot ID, the digest, and `statistics`
    /// on the streams that have not seen these values yet.
    public func sendProgress(statistics: [String: UInt64]? = nil) {
        withState { state in
            if let statistics { state.statistics = statistics }
            let position = WatchPosition(epoch: epoch, seq: state.seq)
            for id in state.streams.keys.sorted() {
                guard var subscriber = state.streams[id] else { continue }
                let changed =
                    state.statistics.isEmpty || subscriber.statisticsSent == state.statistics
                    ? nil : state.statistics
                let progress = WatchProgress(
                    position: position, bootID: state.bootID, digest: state.objects.digest, statistics: changed)
                if changed != nil { subscriber.statisticsSent = changed }
                state.streams[id] = subscriber
                Self.send(.progress(progress), to: id, in: &state, node: node, epoch: epoch)
            }
        }
    }

    /// Ends every stream (the source stopped), saying why.
    public func stop(reason: String) {
        let streams = state.withLock { state in
            defer { state.streams = [:] }
            return Array(state.streams.values)
        }
        for subscriber in streams {
            subscriber.continuation.finish(throwing: KernelWatchError.stopped(node: node, reason: reason))
        }
    }

    /// A stream of the model's changes after `position`: a replay from the ring when `position`
    /// is of this epoch and still in the ring, otherwise a snapshot and `snapshotEnd`; then
    /// every change as it is recorded, with progress in between. The stream ends when its
    /// receiver stops reading it, when its queue fills, or when the model stops.
    public func watch(from position: WatchPosition?) -> AsyncThrowingStream<WatchMessage, any Error> {
        state.withLock { state in
            var opening: [WatchMessage] = []
            let firstInRing = state.seq - UInt64(state.ring.count) + 1
            if let position, position.epoch == epoch, position.seq <= state.seq, position.seq + 1 >= firstInRing {
                var seq = position.seq + 1
                while seq <= state.seq {
                    opening.append(.change(seq: seq, state.ring[Int(seq - firstInRing)]))
                    seq += 1
                }
            } else {
                opening = state.objects.upserts.map { .snapshot($0) }
                opening.append(.snapshotEnd(WatchPosition(epoch: epoch, seq: state.seq), bootID: state.bootID))
            }
            let capacity = opening.count + streamCapacity
            let (stream, continuation) = AsyncThrowingStream<WatchMessage, any Error>.makeStream(
                bufferingPolicy: .bufferingOldest(capacity))
            for message in opening { continuation.yield(message) }
            let id = state.nextStream
            state.nextStream += 1
            state.streams[id] = Subscriber(continuation: continuation, capacity: streamCapacity)
            continuation.onTermination = { [weak self] _ in
                self?.state.withLock { _ = $0.streams.removeValue(forKey: id) }
            }
            return stream
        }
    }

    /// Runs `body` under the lock, then finishes the streams it ended, outside the lock.
    private func withState<T>(_ body: (inout State) -> T) -> T {
        let (result, ending) = state.withLock { state in
            let result = body(&state)
            defer { state.ending = [] }
            return (result, state.ending)
        }
        for (continuation, error) in ending { continuation.finish(throwing: error) }
        return result
    }

    @discardableResult
    private static func record(
        _ change: KernelChange, in state: inout State, node: String, epoch: UInt64, ringCapacity: Int
    ) -> UInt64? {
        guard state.objects.apply(change) else { return nil }
        state.seq += 1
        let stored: KernelChange
        if case .securityAssociation(let sa) = change {
            stored = .securityAssociation(sa.watched)
        } else {
            stored = change
        }
        state.ring.append(stored)
        // The ring holds between `ringCapacity` and twice as many changes: trimming half at a
        // time keeps it amortised.
        if state.ring.count > 2 * ringCapacity { state.ring.removeFirst(state.ring.count - ringCapacity) }
        for id in state.streams.keys.sorted() {
            send(.change(seq: state.seq, stored), to: id, in: &state, node: node, epoch: epoch)
        }
        return state.seq
    }

    /// Queues `message` on stream `id`, or ends the stream with an overflow when its queue is
    /// full.
    private static func send(_ message: WatchMessage, to id: Int, in state: inout State, node: String, epoch: UInt64) {
        guard let subscriber = state.streams[id] else { return }
        switch subscriber.continuation.yield(message) {
        case .enqueued: break
        case .terminated:
            state.streams[id] = nil
        case .dropped:
            state.streams[id] = nil
            state.overflows += 1
            let last: UInt64
            if case .change(let seq, _) = message { last = seq - 1 } else { last = state.seq }
            state.ending.append(
                (
                    subscriber.continuation,
                    KernelWatchError.overflow(
                        node: node, capacity: subscriber.capacity, position: WatchPosition(epoch: epoch, seq: last))
                ))
        @unknown default: break
        }
    }
}
