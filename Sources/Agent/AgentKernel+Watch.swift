import AgentWire
import GRPCCore
import Kernel

/// The agent's watch stream (`Watch`, wire version 2) over the kernel's connection.
extension AgentKernel {
    /// Queue of 16,384 messages per stream: a snapshot of a node with 2,000 channels and the
    /// changes of a rekey of all of them.
    public static let defaultWatchCapacity = 16_384

    /// Metadata key of a RESOURCE_EXHAUSTED ending: the agent's queue of that stream, in messages.
    static let watchCapacityKey = "meshward-watch-capacity"

    /// A watch of the agent's kernel from `position` (nil for a snapshot), one gRPC stream per
    /// call over the kernel's connection. Its queue holds `watchCapacity` messages: a receiver
    /// that falls further behind gets `KernelWatchError.overflow` naming the last position it
    /// was given in full, after every message before it; resume from there.
    ///
    /// Ends with `KernelWatchError.unsupported` when the agent does not serve the watch (a
    /// release of wire version 1 answers UNIMPLEMENTED; a kernel it polls, the same), with
    /// `.stopped` naming the node when the agent ends the stream or the connection fails, and
    /// with `KernelError.unreachable` when the agent's certificate is refused. Never nil.
    public func watch(from position: WatchPosition?) -> AsyncThrowingStream<WatchMessage, any Error>? {
        let (stream, continuation) = AsyncThrowingStream.makeStream(
            of: WatchMessage.self, throwing: (any Error).self, bufferingPolicy: .bufferingOldest(watchCapacity))
        guard protocolVersions.contains(WireCodec.watchProtocolVersion) else {
            end(
                continuation,
                with: KernelWatchError.unsupported(
                    node: node,
                    reason: "this controller speaks agent wire \(AgentError.describe(protocolVersions)), "
                        + "which has no watch"))
            return stream
        }
        let request = WireCodec.watchRequest(reqid: reqid, from: position, newest: protocolVersions.upperBound)
        let task = Task(executorPreference: executor) { [self] in
            let ending = await follow(request, from: position, into: continuation)
            // A receiver that stopped reading cancelled the call: whatever error that made is not
            // the watch's ending.
            if Task.isCancelled {
                continuation.finish()
                return
            }
            switch ending {
            case .cancelled: continuation.finish()
            case .failed(let error): end(continuation, with: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// How a watch stream's call ended.
    private enum Ending: Sendable {
        /// Its receiver stopped reading it.
        case cancelled
        case failed(any Error)
    }

    /// Runs the call, queueing each event for the receiver, and says how it ended.
    private func follow(
        _ request: Meshward_Agent_V1_WatchRequest, from position: WatchPosition?,
        into continuation: AsyncThrowingStream<WatchMessage, any Error>.Continuation
    ) async -> Ending {
        let node = node
        let address = address
        let capacity = watchCapacity
        do {
            return try await service.watch(request, options: .defaults) { response in
                // The last position whose every message was queued: where a resume starts.
                var last = position
                do {
                    for try await event in response.messages {
                        let message: WatchMessage
                        do {
                            message = try WireCodec.message(from: event)
                        } catch {
                            return .failed(
                                KernelWatchError.stopped(
                                    node: node, reason: "the agent at \(address) sent an unreadable event: \(error)"))
                        }
                        switch continuation.yield(message) {
                        case .enqueued: last = Self.position(after: message, last: last)
                        case .terminated: return .cancelled
                        case .dropped:
                            return .failed(
                                KernelWatchError.overflow(
                                    node: node, capacity: capacity, position: last ?? Self.noPosition))
                        @unknown default: return .cancelled
                        }
                    }
                } catch let error as RPCError where error.code == .resourceExhausted {
                    let agentCapacity =
                        Array(error.metadata[stringValues: Self.watchCapacityKey]).first.flatMap { Int($0) } ?? capacity
                    return .failed(
                        KernelWatchError.overflow(
                            node: node, capacity: agentCapacity, position: last ?? Self.noPosition))
                }
                return .failed(
                    KernelWatchError.stopped(node: node, reason: "the agent at \(address) ended the stream"))
            }
        } catch is CancellationError {
            return .cancelled
        } catch let error as RPCError where error.code == .cancelled {
            return .cancelled
        } catch let error as RPCError where error.code == .unimplemented || error.code == .failedPrecondition {
            return .failed(
                KernelWatchError.unsupported(node: node, reason: "the agent at \(address) answered: \(error.message)"))
        } catch {
            if let refusal = check.refusal {
                return .failed(KernelError.unreachable(node: node, reason: "agent at \(address): \(refusal)"))
            }
            return .failed(KernelWatchError.stopped(node: node, reason: "agent at \(address): \(describe(error))"))
        }
    }

    /// Where a stream stands once `message` was queued, having stood at `last`.
    private static func position(after message: WatchMessage, last: WatchPosition?) -> WatchPosition? {
        switch message {
        case .snapshot: last
        case .snapshotEnd(let position, _): position
        case .change(let seq, _): last.map { WatchPosition(epoch: $0.epoch, seq: seq) }
        case .progress(let progress): progress.position
        }
    }

    /// The position of an overflow before any position was known (mid-snapshot): of no epoch, so
    /// that a resume from it gets a snapshot.
    private static let noPosition = WatchPosition(epoch: 0, seq: 0)

    /// Ends `continuation` with `error`, telling `onWatchEnded` first when it is a watch's.
    private func end(_ continuation: AsyncThrowingStream<WatchMessage, any Error>.Continuation, with error: any Error) {
        if let error = error as? KernelWatchError { onWatchEnded?(error) }
        continuation.finish(throwing: error)
    }
}
