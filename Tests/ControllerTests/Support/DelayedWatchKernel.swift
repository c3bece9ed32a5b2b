import Kernel
import MeshwardCore

/// A node's kernel whose watch streams pass through a `WatchDelay`; everything else goes to
/// `inner` as it is. The controller's watch opens its streams through it (`FleetWatch.follow`'s
/// kernel), so the delay sits where a slow path between an agent and the controller would.
struct DelayedWatchKernel: NodeKernel {
    let inner: any NodeKernel
    let delay: WatchDelay

    var node: String { inner.node }
    var reqid: Reqid { inner.reqid }

    func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
        try await inner.observe(deadline: deadline)
    }

    func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult] {
        try await inner.apply(operations, deadline: deadline)
    }

    func applyReportingPosition(
        _ operations: [KernelOperation], deadline: ContinuousClock.Instant
    ) async throws -> AppliedBatch {
        try await inner.applyReportingPosition(operations, deadline: deadline)
    }

    func close() async { await inner.close() }

    /// `inner`'s stream from `position`, relayed through the delay: each message, and the ending,
    /// in the order `inner` gave them.
    func watch(from position: WatchPosition?) -> AsyncThrowingStream<WatchMessage, any Error>? {
        guard let upstream = inner.watch(from: position) else { return nil }
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: WatchMessage.self, throwing: (any Error).self)
        let node = node
        let delay = delay
        let relay = Task {
            do {
                for try await message in upstream { delay.pass(message, of: node, to: continuation) }
                delay.end(of: node, continuation, throwing: nil)
            } catch {
                delay.end(of: node, continuation, throwing: error)
            }
        }
        continuation.onTermination = { _ in relay.cancel() }
        return stream
    }
}
