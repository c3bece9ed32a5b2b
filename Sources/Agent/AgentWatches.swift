import Kernel
import Logging
import MeshwardCore
import Synchronization

/// The watch models of an agent's kernels, one per reqid a controller asked for, and the
/// progress that every stream following them receives (design.md §12).
///
/// A model starts when its kernel is opened (the default reqid's at the agent's start): the
/// kernel subscribes to its changes before its first dump. Every `progressInterval`, jittered by
/// up to 10% either way and timed on the injected clock, each model sends its streams a
/// progress with the namespace's XFRM statistics of the last reading when they changed since
/// that stream last had them. Snapshots and progress name the agent's boot ID, as its
/// observations do. Stopping ends every stream, so that the agent's graceful shutdown
/// does not wait for streams that never end by themselves.
final class AgentWatches: Sendable {
    private enum State {
        case running(models: [Reqid: KernelWatchModel], statistics: [Reqid: [String: UInt64]])
        case stopped(reason: String)
    }

    private let node: String
    private let bootID: String
    private let clock: any Clock<Duration>
    private let progressInterval: Duration
    private let logger: Logger
    private let state = Mutex(State.running(models: [:], statistics: [:]))
    private let openStreams = Mutex(0)

    init(node: String, bootID: String, clock: any Clock<Duration>, progressInterval: Duration, logger: Logger) {
        self.node = node
        self.bootID = bootID
        self.clock = clock
        self.progressInterval = progressInterval
        self.logger = logger
    }

    /// The model of `kernel`, started now when it is not yet; nil when the kernel is polled (not
    /// a `WatchedKernel`). Throws when the kernel refused the subscription, or the watches stopped.
    ///
    /// The kernel comes from the agent's `KernelConnector` as `any NodeKernel`: whether it keeps
    /// a watch model is asked here, the one place.
    func model(of kernel: any NodeKernel) async throws -> KernelWatchModel? {
        switch state.withLock({ $0 }) {
        case .stopped(let reason): throw KernelWatchError.stopped(node: node, reason: reason)
        case .running(let models, _):
            if let model = models[kernel.reqid] { return model }
        }
        guard let watched = kernel as? any WatchedKernel else { return nil }
        // `startWatching` returns the same model to every call.
        let model = try await watched.startWatching()
        // Snapshots and progress name the boot the agent reports in its observations.
        model.setBootID(bootID)
        let stopped = state.withLock { state -> String? in
            switch state {
            case .running(var models, let statistics):
                models[kernel.reqid] = model
                state = .running(models: models, statistics: statistics)
                return nil
            case .stopped(let reason):
                return reason
            }
        }
        if let stopped {
            model.stop(reason: stopped)
            throw KernelWatchError.stopped(node: node, reason: stopped)
        }
        return model
    }

    /// A stream of `model` from `position` (`KernelWatchModel.watch(from:)`); nil once the
    /// watches stopped. Opened under the same lock as `stop` takes, so that no stream opens
    /// after the stop has ended the others.
    func stream(
        of model: KernelWatchModel, from position: WatchPosition?
    ) -> AsyncThrowingStream<WatchMessage, any Error>? {
        state.withLock { state in
            switch state {
            case .stopped: nil
            case .running: model.watch(from: position)
            }
        }
    }

    /// Keeps the statistics of a reading of the kernel of `reqid`, for the next progress.
    func follow(statistics: [String: UInt64], reqid: Reqid) {
        state.withLock { state in
            guard case .running(let models, var kept) = state else { return }
            kept[reqid] = statistics
            state = .running(models: models, statistics: kept)
        }
    }

    /// Sends every model's streams their progress now.
    func sendProgress() {
        let due: [(KernelWatchModel, [String: UInt64]?)]
        switch state.withLock({ $0 }) {
        case .stopped: return
        case .running(let models, let statistics):
            due = models.sorted { $0.key.rawValue < $1.key.rawValue }.map { ($0.value, statistics[$0.key]) }
        }
        for (model, statistics) in due { model.sendProgress(statistics: statistics) }
    }

    /// Sends progress every interval (jittered) until the watches stop or the task is cancelled.
    func runProgress() async {
        while true {
            if case .stopped = state.withLock({ $0 }) { return }
            do {
                try await clock.sleep(for: Self.jittered(progressInterval))
            } catch {
                return
            }
            sendProgress()
        }
    }

    /// `interval` moved by up to 10% either way, at random, so that a fleet's agents started
    /// together do not send their progress in step.
    static func jittered(_ interval: Duration) -> Duration {
        interval * Double.random(in: 0.9...1.1)
    }

    /// Ends every stream of every model with `KernelWatchError.stopped` naming `reason`; no
    /// stream opens after this.
    func stop(reason: String) {
        let models = state.withLock { state -> [KernelWatchModel] in
            switch state {
            case .stopped: return []
            case .running(let models, _):
                state = .stopped(reason: reason)
                return Array(models.values)
            }
        }
        for model in models { model.stop(reason: reason) }
        if !models.isEmpty {
            logger.debug("watch streams ended", metadata: ["node": "\(node)", "reason": "\(reason)"])
        }
    }

    /// Counts a stream opening (+1) or ending (-1); returns how many are open.
    func streamOpened(_ delta: Int) -> Int {
        openStreams.withLock { open in
            open += delta
            return open
        }
    }
}
