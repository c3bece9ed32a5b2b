import Logging
import MeshwardCore

extension NetlinkKernel {
    /// Starts watching, once: opens a second XFRM socket in the node's namespace subscribed to
    /// the SA, policy and expire groups (before the first dump, so no change falls between
    /// them), dumps, fills the model, and starts the reader. Later calls return the same model
    /// while its reader runs; once it stopped (its streams ended with `KernelWatchError.stopped`),
    /// the next call starts a new watch, with a new model (a new epoch).
    /// Throws `KernelWatchError.unsupported` when the subscription is refused (it needs
    /// `CAP_NET_ADMIN`), and the dump's errors.
    public func startWatching() async throws -> KernelWatchModel {
        try await startWatching(receiveBufferBytes: NetlinkEventSocket.receiveBufferBytes)
    }

    /// `startWatching()` with an event queue of `receiveBufferBytes` (tests make it tiny to
    /// make the kernel drop events).
    func startWatching(receiveBufferBytes: Int32) async throws -> KernelWatchModel {
        if let watch = currentWatch { return watch.model }
        let node = self.node
        let reqid = self.reqid
        let logger = self.logger
        let namespacePath: String? =
            switch endpoint {
            case .namespace(let name): "/var/run/netns/\(name)"
            default: nil
            }
        let watch = try await perform(until: .now + Self.defaultCallTimeout) { session in
            if let watch = self.currentWatch { return watch }
            let socket: NetlinkEventSocket
            do {
                socket = try NetlinkEventSocket(namespacePath: namespacePath, receiveBufferBytes: receiveBufferBytes)
            } catch {
                throw KernelWatchError.unsupported(node: node, reason: "subscribing to XFRM events failed: \(error)")
            }
            let watch = try NetlinkWatch(node: node, reqid: reqid, socket: socket, logger: logger)
            _ = try Self.resynchronize(
                watch, session: session, node: node, reqid: reqid, logger: logger, lostEvents: false)
            self.watchState.withLock { $0 = .watching(watch) }
            logger.debug("watching the kernel's XFRM events", metadata: ["node": "\(node)"])
            return watch
        }
        watch.startReading { [weak self] lostEvents, _ in
            guard let self else { return false }
            self.resynchronizeFromReader(watch, lostEvents: lostEvents)
            return true
        }
        return watch.model
    }

    /// The model's stream after `position` once `startWatching()` has run; nil before (and after
    /// `close()`). Once the watch's reader stopped, a stream that ends at once with
    /// `KernelWatchError.stopped`: its receiver opens it again after `startWatching()`.
    public func watch(from position: WatchPosition?) -> AsyncThrowingStream<WatchMessage, any Error>? {
        guard case .watching(let watch) = watchState.withLock({ $0 }) else { return nil }
        guard !watch.isStopped else {
            let error = KernelWatchError.stopped(node: node, reason: "the kernel's watch stopped")
            return AsyncThrowingStream { $0.finish(throwing: error) }
        }
        return watch.model.watch(from: position)
    }

    /// `apply(_:deadline:)`, then, when the kernel is watched, a dump that resynchronises the
    /// model: the position returned covers the batch although its events arrive on their own.
    /// The position is nil when the kernel is not watched or that dump failed (the batch's
    /// results stand either way).
    public func applyReportingPosition(
        _ operations: [KernelOperation], deadline: ContinuousClock.Instant
    ) async throws -> AppliedBatch {
        let results = try await apply(operations, deadline: deadline)
        guard let watch = currentWatch else { return AppliedBatch(results: results, position: nil) }
        do {
            let observation = try await observeWatched(watch, deadline: deadline)
            return AppliedBatch(results: results, position: observation.watchPosition)
        } catch {
            logger.warning(
                "the dump after a batch failed; its watch position is unknown",
                metadata: ["node": "\(node)", "error": "\(error)"])
            return AppliedBatch(results: results, position: nil)
        }
    }

    /// Stops the watch, if any: its reader ends and its streams end with
    /// `KernelWatchError.stopped`. A later `startWatching()` starts a new model (a new epoch).
    public func close() async {
        let watch = watchState.withLock { state -> NetlinkWatch? in
            defer { state = .unwatched }
            if case .watching(let watch) = state { return watch }
            return nil
        }
        watch?.stop(reason: "the kernel was closed")
    }

    /// The watch while it runs; nil before `startWatching()`, after `close()`, and once its
    /// reader stopped (a failed wait for events): the next `startWatching()` starts a new one.
    var currentWatch: NetlinkWatch? {
        watchState.withLock { state in
            if case .watching(let watch) = state, !watch.isStopped { return watch }
            return nil
        }
    }

    /// Dumps and resynchronises `watch`'s model; the observation carries its position.
    func observeWatched(_ watch: NetlinkWatch, deadline: ContinuousClock.Instant) async throws -> NodeObservation {
        let node = self.node
        let reqid = self.reqid
        let logger = self.logger
        return try await perform(until: deadline) { session in
            try Self.resynchronize(watch, session: session, node: node, reqid: reqid, logger: logger, lostEvents: false)
        }
    }

    /// The reader's resynchronisation, on the kernel's queue, after a flush, an event it could
    /// not attribute, or lost events.
    func resynchronizeFromReader(_ watch: NetlinkWatch, lostEvents: Bool) {
        let node = self.node
        let reqid = self.reqid
        let logger = self.logger
        queue.sync {
            session.withLock { session in
                session.socket.setReceiveTimeout(.seconds(NetlinkSocket.receiveTimeoutSeconds))
                do {
                    _ = try Self.resynchronize(
                        watch, session: session, node: node, reqid: reqid, logger: logger, lostEvents: lostEvents)
                } catch {
                    logger.warning(
                        "the watch could not dump the kernel; the next observation resynchronises it",
                        metadata: ["node": "\(node)", "error": "\(error)"])
                }
            }
        }
    }

    /// Under the watch's event lock: discards the queued events (the dump supersedes them),
    /// dumps, and records the differences; the observation carries the model's position.
    /// Events found lost while discarding count the resynchronisation as a recovery.
    static func resynchronize(
        _ watch: NetlinkWatch, session: NetlinkSession, node: String, reqid: Reqid, logger: Logger, lostEvents: Bool
    ) throws -> NodeObservation {
        try watch.events.withLock { socket in
            let lost = (try? socket.discardQueued()) ?? true
            var observation = try observe(session: session, node: node, reqid: reqid, logger: logger)
            observation.watchPosition = watch.model.resynchronize(
                to: WatchedObjects(
                    securityAssociations: observation.securityAssociations, policies: observation.policies),
                lostEvents: lostEvents || lost)
            return observation
        }
    }
}
