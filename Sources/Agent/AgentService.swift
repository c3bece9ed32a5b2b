import AgentWire
import Foundation
import GRPCCore
import Identity
import Kernel
import Logging
import MeshwardCore
import Synchronization

/// The agent's gRPC service: exactly the `NodeKernel` seam of its host (observe, apply, watch)
/// and the controller's ready mark.
///
/// Every apply passes the epoch gate first; a refused one touches nothing. Observations carry
/// key fingerprints only. Keys in apply requests go to the kernel and nowhere else: they are
/// never logged and never written to the agent directory. After every apply that reached the
/// kernel, and with every observation, the boot guard list follows the kernel.
struct AgentService: Meshward_Agent_V1_NodeKernelService.SimpleServiceProtocol {
    let node: String
    let connector: any KernelConnector
    let endpoint: NodeEndpoint
    let epochs: EpochGate
    let directory: AgentDirectory?
    let bootID: String
    let onReady: @Sendable (String) -> Void
    /// The wire versions this agent speaks (`WireCodec.protocolVersions`): it answers each
    /// request in the newest one the controller speaks too.
    let protocolVersions: ClosedRange<UInt32>
    let recorder: any AgentRecorder
    /// The boot guard list, derived from the kernel after applies and observations.
    let bootGuard: BootGuardKeeper
    /// The agent's certificate renewals.
    let renewer: CertificateRenewer
    /// The watch models of its kernels, and their progress.
    let watches: AgentWatches
    let logger: Logger
    private let kernels = KernelCache()

    init(
        node: String, connector: any KernelConnector, endpoint: NodeEndpoint, epochs: EpochGate,
        directory: AgentDirectory?, bootID: String, protocolVersions: ClosedRange<UInt32> = WireCodec.protocolVersions,
        recorder: any AgentRecorder = DiscardingAgentRecorder(), bootGuard: BootGuardKeeper,
        renewer: CertificateRenewer, watches: AgentWatches, onReady: @escaping @Sendable (String) -> Void,
        logger: Logger
    ) {
        self.watches = watches
        self.renewer = renewer
        self.node = node
        self.connector = connector
        self.endpoint = endpoint
        self.epochs = epochs
        self.directory = directory
        self.bootID = bootID
        self.protocolVersions = protocolVersions
        self.recorder = recorder
        self.bootGuard = bootGuard
        self.onReady = onReady
        self.logger = logger
    }

    /// A request refused or failed, with the result it is recorded as.
    struct Refusal: Error, CustomStringConvertible {
        let result: AgentRequestResult
        let error: RPCError

        var description: String { error.message }
    }

    /// Runs one request's `body` and records how it was answered.
    private func serving<Reply>(
        _ kind: AgentRequestKind, _ body: () async throws(Refusal) -> (Reply, AgentRequestResult)
    ) async throws -> Reply {
        do {
            let (reply, result) = try await body()
            recorder.record(request: kind, result: result)
            return reply
        } catch {
            recorder.record(request: kind, result: error.result)
            throw error.error
        }
    }

    /// How long the agent gives its own kernel for one call.
    static let kernelTimeout: Duration = .seconds(25)

    func observe(
        request: Meshward_Agent_V1_ObserveRequest, context: ServerContext
    ) async throws -> Meshward_Agent_V1_ObserveReply {
        try await serving(.observe) {
            () async throws(Refusal) -> (Meshward_Agent_V1_ObserveReply, AgentRequestResult) in
            let version = try checkVersion(request.protocolVersion, request.newestProtocolVersion, kind: .observe)
            let kernel = try await kernel(reqid: Reqid(request.reqid))
            let observation: NodeObservation
            let ticket = bootGuard.ticket()
            do {
                observation = try await kernel.observe(deadline: .now + Self.kernelTimeout)
            } catch let error as KernelError {
                throw Refusal(
                    result: .kernelUnavailable, error: RPCError(code: .unavailable, message: error.description))
            } catch {
                throw Refusal(result: .kernelUnavailable, error: RPCError(code: .unavailable, message: "\(error)"))
            }
            recorder.record(statistics: observation.statistics)
            watches.follow(statistics: observation.statistics, reqid: kernel.reqid)
            bootGuard.follow(observation, reqid: kernel.reqid, ticket: ticket)
            var reply = WireCodec.reply(to: observation, bootID: bootID, highestEpoch: epochs.current)
            reply.protocolVersion = version
            if version >= WireCodec.watchProtocolVersion {
                reply.newestProtocolVersion = protocolVersions.upperBound
            } else {
                reply.clearWatchPosition()
            }
            return (reply, .ok)
        }
    }

    func apply(
        request: Meshward_Agent_V1_ApplyRequest, context: ServerContext
    ) async throws -> Meshward_Agent_V1_ApplyReply {
        try await serving(.apply) { () async throws(Refusal) -> (Meshward_Agent_V1_ApplyReply, AgentRequestResult) in
            let version = try checkVersion(request.protocolVersion, request.newestProtocolVersion, kind: .apply)
            try admit(request.epoch, to: "an apply")
            let operations: [KernelOperation]
            do {
                operations = try request.operations.map(WireCodec.decode)
            } catch {
                throw Refusal(result: .invalid, error: RPCError(code: .invalidArgument, message: "\(error)"))
            }
            let kernel = try await kernel(reqid: Reqid(request.reqid))
            let batch: AppliedBatch
            do {
                batch = try await kernel.applyReportingPosition(operations, deadline: .now + Self.kernelTimeout)
            } catch let error as KernelError {
                throw Refusal(
                    result: .kernelUnavailable, error: RPCError(code: .unavailable, message: error.description))
            } catch {
                throw Refusal(result: .kernelUnavailable, error: RPCError(code: .unavailable, message: "\(error)"))
            }
            let results = batch.results
            // The list derives from the owned policies alone: a batch that changed none (the
            // inbound SAs of a rekey's first stage, the old SAs of its last) leaves it as it was.
            if results.contains(where: { $0.outcome.isApplied && $0.operation.isPolicyOperation }) {
                await followKernel(kernel)
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
            reply.protocolVersion = version
            reply.outcomes = results.map { WireCodec.encode($0.outcome) }
            if version >= WireCodec.watchProtocolVersion {
                reply.newestProtocolVersion = protocolVersions.upperBound
                if let position = batch.position { reply.watchPosition = WireCodec.encode(position) }
            }
            return (reply, .ok)
        }
    }

    func markReady(
        request: Meshward_Agent_V1_MarkReadyRequest, context: ServerContext
    ) async throws -> Meshward_Agent_V1_MarkReadyReply {
        try await serving(.markReady) {
            () async throws(Refusal) -> (Meshward_Agent_V1_MarkReadyReply, AgentRequestResult) in
            _ = try checkVersion(request.protocolVersion, request.newestProtocolVersion, kind: .markReady)
            var reply = Meshward_Agent_V1_MarkReadyReply()
            guard request.bootID == bootID, request.epoch >= epochs.current else {
                reply.ready = false
                return (reply, .otherBoot)
            }
            if let directory {
                do {
                    if try directory.readReadyBoot() != bootID { try directory.writeReadyBoot(bootID) }
                } catch {
                    throw Refusal(result: .failed, error: RPCError(code: .internalError, message: "\(error)"))
                }
            }
            onReady(bootID)
            reply.ready = true
            return (reply, .ok)
        }
    }

    /// Passes `epoch` through the epoch gate, or refuses `what` (a request from a deposed
    /// controller) before it has any effect.
    private func admit(_ epoch: UInt64, to what: String) throws(Refusal) {
        let before = epochs.current
        do {
            try epochs.admit(epoch)
        } catch {
            logger.warning(
                "refused \(what) from a deposed controller",
                metadata: ["node": "\(node)", "epoch.presented": "\(epoch)", "epoch.highest": "\(epochs.current)"])
            let result: AgentRequestResult
            switch error {
            case AgentError.staleEpoch: result = .staleEpoch
            default: result = .failed
            }
            throw Refusal(result: result, error: RPCError(code: .failedPrecondition, message: "\(error)"))
        }
        if epochs.current != before { recorder.record(highestEpoch: epochs.current) }
    }

    func requestRenewal(
        request: Meshward_Agent_V1_RenewalRequest, context: ServerContext
    ) async throws -> Meshward_Agent_V1_RenewalCSR {
        try await serving(.requestRenewal) {
            () async throws(Refusal) -> (Meshward_Agent_V1_RenewalCSR, AgentRequestResult) in
            let version = try checkVersion(
                request.protocolVersion, request.newestProtocolVersion, kind: .requestRenewal)
            try admit(request.epoch, to: "a certificate renewal")
            var reply = Meshward_Agent_V1_RenewalCSR()
            reply.protocolVersion = version
            do {
                reply.csr = Data(try renewer.request())
            } catch {
                throw Refusal(
                    result: .failed,
                    error: RPCError(
                        code: .internalError, message: "agent of node \(node) could not make a renewal key: \(error)"))
            }
            return (reply, .ok)
        }
    }

    func completeRenewal(
        request: Meshward_Agent_V1_RenewalCertificate, context: ServerContext
    ) async throws -> Meshward_Agent_V1_RenewalStored {
        try await serving(.completeRenewal) {
            () async throws(Refusal) -> (Meshward_Agent_V1_RenewalStored, AgentRequestResult) in
            let version = try checkVersion(
                request.protocolVersion, request.newestProtocolVersion, kind: .completeRenewal)
            try admit(request.epoch, to: "a renewed certificate")
            let renewed: AgentCredentials
            do {
                renewed = try renewer.complete(certificateDER: Array(request.certificate))
            } catch let error as AgentError {
                logger.error(
                    "could not write the renewed certificate; serving with the old one",
                    metadata: ["node": "\(node)", "error": "\(error)"])
                throw Refusal(
                    result: .failed,
                    error: RPCError(
                        code: .internalError,
                        message: "agent of node \(node) could not write its renewed certificate and keeps the old "
                            + "one: \(error)"))
            } catch {
                logger.warning(
                    "refused a renewed certificate; serving with the old one",
                    metadata: ["node": "\(node)", "reason": "\(error)"])
                throw Refusal(
                    result: .invalid,
                    error: RPCError(
                        code: .failedPrecondition,
                        message: "agent of node \(node) refused the renewed certificate and keeps the old one: \(error)"
                    ))
            }
            // The new listener is up before the controller hears of it: its next connection meets
            // the new certificate. This call finishes on the old one.
            await renewer.listenAgain(with: renewed)
            let expiry =
                (try? IssuedCredential(certificatePEM: renewed.certificatePEM, privateKeyPEM: renewed.privateKeyPEM))
                .map { ISO8601DateFormatter().string(from: $0.notValidAfter) } ?? "unknown"
            logger.notice(
                "renewed the agent certificate; listening with it",
                metadata: ["node": "\(node)", "expires": "\(expiry)"])
            var reply = Meshward_Agent_V1_RenewalStored()
            reply.protocolVersion = version
            reply.stored = true
            return (reply, .ok)
        }
    }

    /// Reads the kernel after an apply that changed a policy, so that the boot guard list follows
    /// it. A failed read is logged; the list stays as it was until the next observation.
    private func followKernel(_ kernel: any NodeKernel) async {
        let ticket = bootGuard.ticket()
        do {
            let observation = try await kernel.observe(deadline: .now + Self.kernelTimeout)
            bootGuard.follow(observation, reqid: kernel.reqid, ticket: ticket)
        } catch {
            logger.warning(
                "could not read the kernel after an apply; the boot guard list follows at the next observation",
                metadata: ["node": "\(node)", "reason": "\(error)"])
        }
    }

    /// Installs the boot guard: for every selector in the list that the kernel has no owned
    /// outbound policy for (a reboot, a flush), a guard policy that drops its packets. Runs once,
    /// before the agent serves. Returns how many it installed; a kernel that cannot be opened or
    /// read is logged as an error, and the agent serves anyway so that a controller can restore it.
    @discardableResult
    func installBootGuard() async -> Int {
        await bootGuard.installAll(timeout: Self.kernelTimeout) { reqid in try await kernel(reqid: reqid) }
    }

    /// The version to answer a request in whose sender speaks `oldest` (the request's
    /// `protocol_version`) up to `newest` (0 from a controller of version 1): the newest both
    /// speak (`WireCodec.answerVersion`). Refuses one that shares none with this agent, naming
    /// both.
    func checkVersion(_ oldest: UInt32, _ newest: UInt32, kind: AgentRequestKind) throws(Refusal) -> UInt32 {
        guard let version = WireCodec.answerVersion(oldest: oldest, newest: newest, spoken: protocolVersions) else {
            let controller = oldest...max(oldest, newest)
            let error = AgentError.controllerVersionRefused(node: node, agent: protocolVersions, controller: controller)
            logger.warning(
                "refused a request in another wire version",
                metadata: [
                    "node": "\(node)", "request": "\(kind.rawValue)",
                    "version.agent": "\(AgentError.describe(protocolVersions))",
                    "version.controller": "\(AgentError.describe(controller))",
                ])
            throw Refusal(
                result: .versionMismatch, error: RPCError(code: .failedPrecondition, message: error.description))
        }
        return version
    }

    /// The kernel of `reqid`, opened at its first use and kept; its watch model starts when it is
    /// opened (`AgentWatches`).
    func kernel(reqid: Reqid) async throws(Refusal) -> any NodeKernel {
        if let kernel = kernels.kernel(for: reqid) { return kernel }
        let kernel: any NodeKernel
        do {
            kernel = kernels.keep(try await connector.connect(node: node, endpoint: endpoint, reqid: reqid), for: reqid)
        } catch {
            throw Refusal(result: .kernelUnavailable, error: RPCError(code: .unavailable, message: "\(error)"))
        }
        await startWatching(kernel)
        return kernel
    }

    /// Starts the watch model of `kernel` when it keeps one; a kernel that refuses the
    /// subscription is logged, and served polled until a watch request tries again.
    func startWatching(_ kernel: any NodeKernel) async {
        do {
            _ = try await watches.model(of: kernel)
        } catch {
            logger.warning(
                "could not start watching the kernel; a watch request tries again",
                metadata: ["node": "\(node)", "reqid": "\(kernel.reqid)", "reason": "\(error)"])
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
