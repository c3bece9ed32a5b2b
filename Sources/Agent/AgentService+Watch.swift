import AgentWire
import GRPCCore
import Kernel
import MeshwardCore

/// `Watch` (wire version 2): the agent's watch model of a kernel, streamed to a controller.
///
/// Guarded as `Observe` is: the handshake admits only a controller of the cluster, and, being a
/// read, a watch carries no lease epoch. An agent that speaks no version with the watch answers
/// UNIMPLEMENTED, as an agent of an older release does; one whose kernel is polled (keeps no
/// watch model) answers UNIMPLEMENTED too, saying so. A stream whose controller does not read
/// fast enough ends with RESOURCE_EXHAUSTED once every event up to the model's overflow
/// position has been written, and one whose model stops (the agent stops) with UNAVAILABLE.
extension AgentService {
    func watch(
        request: Meshward_Agent_V1_WatchRequest, response: RPCWriter<Meshward_Agent_V1_WatchEvent>,
        context: ServerContext
    ) async throws {
        let stream: AsyncThrowingStream<WatchMessage, any Error>
        let position = request.hasPosition ? WireCodec.decode(request.position) : nil
        do {
            stream = try await openWatch(request, from: position)
        } catch {
            recorder.record(request: .watch, result: error.result)
            throw error.error
        }
        recorder.record(request: .watch, result: .ok)
        recorder.record(watchStreamsOpen: watches.streamOpened(1))
        defer { recorder.record(watchStreamsOpen: watches.streamOpened(-1)) }
        // gRPC tells a handler that its RPC was cancelled (the controller went away, the server
        // is stopping) through the RPC's cancellation handle, not by cancelling its task: the
        // stream is followed in a task of its own that either cancels.
        let following = Task { try await follow(stream, from: position, to: response) }
        try await withTaskCancellationHandler {
            try await withRPCCancellationHandler {
                try await following.value
            } onCancelRPC: {
                following.cancel()
            }
        } onCancel: {
            following.cancel()
        }
    }

    /// Writes each message of `stream` to `response` until the stream ends; throws the status
    /// the stream ends with.
    private func follow(
        _ stream: AsyncThrowingStream<WatchMessage, any Error>, from position: WatchPosition?,
        to response: RPCWriter<Meshward_Agent_V1_WatchEvent>
    ) async throws {
        var started = false
        do {
            for try await message in stream {
                if !started {
                    started = true
                    switch message {
                    case .snapshot, .snapshotEnd: recorder.record(watchStart: .snapshot)
                    case .change, .progress: recorder.record(watchStart: position == nil ? .snapshot : .resume)
                    }
                }
                // Counted as it is handed to the stream, so that a controller that has it also
                // finds it counted.
                recorder.record(watchEventsSent: 1)
                try await response.write(WireCodec.event(message))
            }
        } catch let error as KernelWatchError {
            switch error {
            case .overflow(_, let capacity, _):
                recorder.recordWatchOverflow()
                logger.notice(
                    "a controller did not read its watch stream fast enough; it resumes from its last seq",
                    metadata: ["node": "\(node)", "reason": "\(error)"])
                var metadata = Metadata()
                metadata.addString("\(capacity)", forKey: AgentKernel.watchCapacityKey)
                throw RPCError(code: .resourceExhausted, message: error.description, metadata: metadata)
            case .stopped, .unsupported:
                throw RPCError(code: .unavailable, message: error.description)
            }
        }
        if Task.isCancelled { throw CancellationError() }
        throw RPCError(
            code: .unavailable, message: "agent of node \(node): the watch ended; watch again from the last seq")
    }

    /// The stream of the model of the kernel `request` names, after the checks.
    private func openWatch(
        _ request: Meshward_Agent_V1_WatchRequest, from position: WatchPosition?
    ) async throws(Refusal) -> AsyncThrowingStream<WatchMessage, any Error> {
        guard protocolVersions.upperBound >= WireCodec.watchProtocolVersion else {
            throw Refusal(
                result: .versionMismatch,
                error: RPCError(
                    code: .unimplemented,
                    message: "agent of node \(node) speaks agent wire \(AgentError.describe(protocolVersions)), "
                        + "which has no watch"))
        }
        _ = try checkVersion(request.protocolVersion, request.newestProtocolVersion, kind: .watch)
        let kernel = try await kernel(reqid: Reqid(request.reqid))
        let model: KernelWatchModel?
        do {
            model = try await watches.model(of: kernel)
        } catch {
            throw Refusal(
                result: .kernelUnavailable,
                error: RPCError(code: .unavailable, message: "agent of node \(node) cannot watch its kernel: \(error)"))
        }
        guard let model else {
            throw Refusal(
                result: .kernelUnavailable,
                error: RPCError(
                    code: .unimplemented,
                    message:
                        "agent of node \(node): its kernel keeps no watch model (reqid \(kernel.reqid)); it is polled"
                ))
        }
        guard let stream = watches.stream(of: model, from: position) else {
            throw Refusal(
                result: .kernelUnavailable,
                error: RPCError(code: .unavailable, message: "agent of node \(node) is stopping"))
        }
        return stream
    }
}
