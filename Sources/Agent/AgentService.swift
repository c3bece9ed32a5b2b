import AgentWire
import Foundation
import GRPCCore
import Kernel
import Logging
import MeshwardCore
import Synchronization

/// The agent's gRPC service: exactly the `NodeKernel` seam of its host (observe, apply) and the
/// controller's ready mark.
///
/// Every apply passes the epoch gate first; a refused one touches nothing. Observations carry
/// key fingerprints only. Keys in apply requests go to the kernel and nowhere else: they are
/// never logged and never written to the agent directory.
struct AgentService: Meshward_Agent_V1_NodeKernelService.SimpleServiceProtocol {
    let node: String
    let connector: any KernelConnector
    let endpoint: NodeEndpoint
    let epochs: EpochGate
    let directory: AgentDirectory?
    let bootID: String
    let onReady: @Sendable (String) -> Void
    let logger: Logger
    private let kernels = KernelCache()

    init(
        node: String, connector: any KernelConnector, endpoint: NodeEndpoint, epochs: EpochGate,
        directory: AgentDirectory?, bootID: String, onReady: @escaping @Sendable (String) -> Void, logger: Logger
    ) {
        self.node = node
        self.connector = connector
        self.endpoint = endpoint
        self.epochs = epochs
        self.directory = directory
        self.bootID = bootID
        self.onReady = onReady
        self.logger = logger
    }

    /// How long the agent gives its own kernel for one call.
    static let kernelTimeout: Duration = .seconds(25)

    func observe(
        request: Meshward_Agent_V1_ObserveRequest, context: ServerContext
    ) async throws -> Meshward_Agent_V1_ObserveReply {
        try checkVersion(request.protocolVersion)
        let kernel = try await kernel(reqid: Reqid(request.reqid))
        do {
            let observation = try await kernel.observe(deadline: .now + Self.kernelTimeout)
            return WireCodec.reply(to: observation, bootID: bootID, highestEpoch: epochs.current)
        } catch let error as KernelError {
            throw RPCError(code: .unavailable, message: error.description)
        }
    }

    func apply(
        request: Meshward_Agent_V1_ApplyRequest, context: ServerContext
    ) async throws -> Meshward_Agent_V1_ApplyReply {
        try checkVersion(request.protocolVersion)
        do {
            try epochs.admit(request.epoch)
        } catch let error as AgentError {
            logger.warning(
                "refused an apply from a deposed controller",
                metadata: [
                    "node": "\(node)", "epoch.presented": "\(request.epoch)", "epoch.highest": "\(epochs.current)",
                ])
            throw RPCError(code: .failedPrecondition, message: error.description)
        }
        let operations: [KernelOperation]
        do {
            operations = try request.operations.map(WireCodec.decode)
        } catch {
            throw RPCError(code: .invalidArgument, message: "\(error)")
        }
        let kernel = try await kernel(reqid: Reqid(request.reqid))
        let results: [OperationResult]
        do {
            results = try await kernel.apply(operations, deadline: .now + Self.kernelTimeout)
        } catch let error as KernelError {
            throw RPCError(code: .unavailable, message: error.description)
        }
        let failed = results.filter { !$0.outcome.isApplied }.count
        logger.info(
            "applied a batch",
            metadata: [
                "node": "\(node)", "epoch": "\(request.epoch)", "operations": "\(results.count)",
                "refused": "\(failed)",
            ])
        for result in results where !result.outcome.isApplied {
            logger.notice(
                "kernel refused an operation",
                metadata: ["node": "\(node)", "operation": "\(result.operation)", "outcome": "\(result.outcome)"])
        }
        var reply = Meshward_Agent_V1_ApplyReply()
        reply.protocolVersion = WireCodec.protocolVersion
        reply.outcomes = results.map { WireCodec.encode($0.outcome) }
        return reply
    }

    func markReady(
        request: Meshward_Agent_V1_MarkReadyRequest, context: ServerContext
    ) async throws -> Meshward_Agent_V1_MarkReadyReply {
        try checkVersion(request.protocolVersion)
        var reply = Meshward_Agent_V1_MarkReadyReply()
        guard request.bootID == bootID, request.epoch >= epochs.current else {
            reply.ready = false
            return reply
        }
        if let directory {
            do {
                if try directory.readReadyBoot() != bootID { try directory.writeReadyBoot(bootID) }
            } catch {
                throw RPCError(code: .internalError, message: "\(error)")
            }
        }
        onReady(bootID)
        reply.ready = true
        return reply
    }

    private func checkVersion(_ version: UInt32) throws {
        guard version == WireCodec.protocolVersion else {
            throw RPCError(
                code: .failedPrecondition,
                message: AgentError.protocolMismatch(node: node, ours: WireCodec.protocolVersion, theirs: version)
                    .description)
        }
    }

    private func kernel(reqid: Reqid) async throws -> any NodeKernel {
        if let kernel = kernels.kernel(for: reqid) { return kernel }
        do {
            let kernel = try await connector.connect(node: node, endpoint: endpoint, reqid: reqid)
            return kernels.keep(kernel, for: reqid)
        } catch {
            throw RPCError(code: .unavailable, message: "\(error)")
        }
    }
}

/// The kernels an agent opened, one per reqid a controller asked for.
final class KernelCache: Sendable {
    private let kernels = Mutex<[Reqid: any NodeKernel]>([:])

    func kernel(for reqid: Reqid) -> (any NodeKernel)? { kernels.withLock { $0[reqid] } }

    func keep(_ kernel: any NodeKernel, for reqid: Reqid) -> any NodeKernel {
        kernels.withLock { kernels in
            if let raced = kernels[reqid] { return raced }
            kernels[reqid] = kernel
            return kernel
        }
    }
}
