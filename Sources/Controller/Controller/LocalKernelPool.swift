import Foundation
import Kernel
import Logging
import MeshwardCore
import Reconciler
import Synchronization

/// The kernels of the fleet's `local` and `netns:` nodes (XFRM netlink on this host), kept for as
/// long as the controller process runs, as the agents' connections are (`AgentConnectionPool`):
/// every use (a pass, a plan, a status, each cycle of a loop) reaches a node through the same
/// kernel, and the session's watch (`FleetWatch`) follows each through one stream that lives
/// across cycles (design.md §12: "`endpoint: local` and `netns:` get the same watch").
///
/// A kernel is kept per node for the endpoint and reqid it was opened for. A use that asks for
/// another endpoint or reqid closes it and opens another (a new watch model: a new epoch, which
/// the watch's copy answers with a snapshot); `keep(only:reqid:)` closes the kernels of nodes
/// that left the fleet, and `close()` every kernel.
///
/// **Progress, and why an unchanged kernel is not stale.** An agent sends each stream a
/// progress about every 10 s, and the watch takes a node whose stream was silent for three
/// progress intervals to be stale: over a network, silence may be a connection that died
/// without a word. A `NetlinkKernel`'s watch sends changes only, so an in-process stream of a
/// kernel that does not change is silent too, though nothing is wrong. Its stream cannot die
/// silently: the model and the stream live in this process, and when the kernel's watch stops
/// (closed, or its reader failed) every stream of it ends with `KernelWatchError.stopped`,
/// which the watch sees at once, and it opens the stream again after its backoff, on the
/// kernel's new model. So exempting such a stream from staleness would be sound; instead this
/// pool does what the agent does for its own models: every `progressInterval`
/// on the injected clock it sends the streams of each watched model a progress (position and
/// digest). One staleness rule then holds for every watched node, the digest is checked against
/// the copy as an agent's is, and a test clock that stands still never makes a node stale nor
/// fires a progress. The timer watches the clock (`ReconcilerClock.watch(until:)`): it never
/// moves it, so a test clock that jumps over a loop's interval fires it as it passes.
public final class LocalKernelPool: KernelConnector, Sendable {
    /// Opens the kernel of a node at an endpoint for a reqid (`NetlinkKernel` in production).
    public typealias Opener =
        @Sendable (_ node: String, _ endpoint: NodeEndpoint, _ reqid: Reqid) throws -> any WatchedKernel

    /// How often each watched model's streams get a progress (the watch's progress interval).
    public let progressInterval: Duration
    private let open: Opener
    private let clock: any ReconcilerClock
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var kernels: [String: Kept] = [:]
        /// Where each node of the fleet is reached, as the last `keep(only:reqid:)` said.
        var wanted: [String: Key] = [:]
        /// Sends the progress while any kernel is watched.
        var progress: Task<Void, Never>?
        /// Kernels opened since the pool was made (replacements included).
        var opened = 0
    }

    /// What a kernel was opened for: another value needs another kernel.
    struct Key: Hashable {
        var endpoint: NodeEndpoint
        var reqid: Reqid
    }

    private struct Kept {
        let key: Key
        let kernel: any WatchedKernel
        /// Tells this kernel from a later one opened for the same node.
        let serial: Int
        /// The kernel's watch model, once a stream asked for it.
        var model: KernelWatchModel?
    }

    /// - Parameters:
    ///   - clock: the controller's clock, which times the progress.
    ///   - progressInterval: how often each watched model's streams get a progress.
    ///   - open: opens a node's kernel; nil opens a `NetlinkKernel`.
    public init(
        clock: any ReconcilerClock, progressInterval: Duration, logger: Logger, open: Opener? = nil
    ) {
        self.clock = clock
        self.progressInterval = progressInterval
        self.logger = logger
        self.open =
            open ?? { node, endpoint, reqid in
                try NetlinkKernel(node: node, endpoint: endpoint, reqid: reqid, logger: logger)
            }
    }

    // MARK: KernelConnector

    public var schemes: Set<NodeEndpoint.Scheme> { Self.endpointSchemes }

    /// The endpoint schemes whose kernels the pool opens and keeps.
    public static let endpointSchemes: Set<NodeEndpoint.Scheme> = [.local, .netns]

    /// The kernels are the pool's, kept after each use.
    public var keepsKernels: Bool { true }

    /// The kept kernel of `node` when it was opened for `endpoint` and `reqid`; otherwise a new
    /// one, the node's old one (if any) closed. Throws `KernelError.unreachable` when it cannot
    /// be opened (a namespace that does not exist), and keeps nothing then.
    public func connect(node: String, endpoint: NodeEndpoint, reqid: Reqid) async throws -> any NodeKernel {
        try await kernel(node: node, key: Key(endpoint: endpoint, reqid: reqid)).kernel
    }

    // MARK: Keeping

    /// Kernels opened since the pool was made, replacements included.
    public var kernelsOpened: Int { state.withLock { $0.opened } }

    /// Says where each `local` and `netns:` node of the fleet is reached (`endpoints`, every one
    /// for `reqid`), for the watch's streams (`watchedKernel(for:)`), and closes the kernels of
    /// every other node and of nodes whose endpoint or reqid changed.
    public func keep(only endpoints: [String: NodeEndpoint], reqid: Reqid) async {
        let wanted = endpoints.filter { Self.endpointSchemes.contains($0.value.scheme) }
            .mapValues { Key(endpoint: $0, reqid: reqid) }
        let gone = state.withLock { state -> [any WatchedKernel] in
            state.wanted = wanted
            let gone = state.kernels.filter { wanted[$0.key] != $0.value.key }
            for node in gone.keys { state.kernels[node] = nil }
            return gone.values.map(\.kernel)
        }
        await Self.close(gone)
    }

    /// The kernel of `node` for the watch's stream, watching (`WatchedKernel.startWatching()`):
    /// the kept one, or one opened where the fleet reaches the node (`keep(only:reqid:)`). Nil
    /// when the node is not a `local` or `netns:` node of the fleet. Throws when the kernel
    /// cannot be opened or watched.
    public func watchedKernel(for node: String) async throws -> (any NodeKernel)? {
        guard let key = state.withLock({ $0.wanted[node] }) else { return nil }
        let (kernel, serial) = try await kernel(node: node, key: key)
        // A kernel whose watch stopped starts a new model here: it is the one kept from now on.
        let model = try await kernel.startWatching()
        state.withLock { state in
            guard state.kernels[node]?.serial == serial else { return }
            state.kernels[node]?.model = model
            if state.progress == nil { state.progress = progressTask() }
        }
        return kernel
    }

    /// Sends every watched model's streams their progress now.
    func sendProgress() {
        let models = state.withLock { $0.kernels.values.compactMap(\.model) }
        for model in models { model.sendProgress() }
    }

    /// Closes every kernel and stops the progress; a use after this opens kernels again.
    public func close() async {
        let (kernels, progress) = state.withLock { state in
            defer { state = State(opened: state.opened) }
            return (state.kernels.values.map(\.kernel), state.progress)
        }
        progress?.cancel()
        await Self.close(kernels)
    }

    // MARK: Private

    /// The kept kernel of `node` for `key`, or a new one (the node's old one closed; a kernel
    /// opened by a use that lost the race to another is closed instead), with its serial.
    private func kernel(node: String, key: Key) async throws -> (kernel: any WatchedKernel, serial: Int) {
        if let kept = state.withLock({ $0.kernels[node] }), kept.key == key { return (kept.kernel, kept.serial) }
        let opened = try open(node, key.endpoint, key.reqid)
        let (kept, replaced) = state.withLock { state -> (Kept, (any WatchedKernel)?) in
            if let existing = state.kernels[node], existing.key == key { return (existing, opened) }
            let replaced = state.kernels[node]?.kernel
            state.opened += 1
            let kept = Kept(key: key, kernel: opened, serial: state.opened)
            state.kernels[node] = kept
            return (kept, replaced)
        }
        if let replaced {
            logger.debug("closing a node's kept kernel", metadata: ["node": "\(node)"])
            await replaced.close()
        }
        return (kept.kernel, kept.serial)
    }

    /// The progress loop: every `progressInterval` on the clock, until cancelled (`close()`) or
    /// the pool is gone.
    private func progressTask() -> Task<Void, Never> {
        let clock = self.clock
        let interval = progressInterval.timeInterval
        return Task { [weak self] in
            while !Task.isCancelled {
                do {
                    try await clock.watch(until: clock.now().addingTimeInterval(interval))
                } catch {
                    return
                }
                guard let self else { return }
                self.sendProgress()
            }
        }
    }

    private static func close(_ kernels: [any WatchedKernel]) async {
        guard !kernels.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            for kernel in kernels { group.addTask { await kernel.close() } }
        }
    }
}
