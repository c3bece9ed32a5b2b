import DesiredState
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import Reconciler
import Store

/// What the commands do, with the modules wired together: load the spec, open the Store under
/// its lease, reach the nodes, run passes, and report. The command-line tool only parses
/// arguments and prints what this returns.
public final class MeshwardController: Sendable {
    /// The state directory (Store, master key, simulated fleet).
    public let stateDirectory: String
    /// Where the Store lives: the state directory, or a PostgreSQL server.
    public let storeLocation: StoreLocation
    private let masterKeyPath: String?
    private let logger: Logger
    let clock: any ReconcilerClock
    private let recorder: any ReconcileRecorder
    /// The kernels and agent connections of this controller, kept across its commands and
    /// cycles (one controller per process).
    let session: FleetSession
    /// What a test harness watches (`meshward-faulty`); none in `meshward`.
    let observers: ControllerObservers

    /// - Parameter recorder: where `apply` reports every pass and the lease (metrics); only
    ///   the reconcile loop passes one.
    public init(
        stateDirectory: String, store: StoreLocation = .stateDirectory, masterKeyPath: String? = nil,
        logger: Logger, clock: any ReconcilerClock = SystemClock(),
        recorder: any ReconcileRecorder = DiscardingRecorder(), observers: ControllerObservers = ControllerObservers()
    ) {
        self.observers = observers
        self.storeLocation = store
        self.recorder = recorder
        self.stateDirectory = stateDirectory
        self.masterKeyPath = masterKeyPath
        self.logger = logger
        self.clock = clock
        self.session = FleetSession(clock: clock, beforeAgentApply: observers.beforeAgentApply, logger: logger)
    }

    /// Stops the watch, closes the kept netlink kernels and the connections to the agents, each
    /// cleanly (`AgentKernel.close`): a process calls it before it exits. A command after it
    /// opens and dials again.
    public func close() async {
        await session.close()
    }

    /// Starts opening the Store (its integrity check and migrations included) when there is
    /// one, and returns at once: a command calls this before it loads the spec, so that the
    /// two overlap. The command's plan or apply takes the Store from the session; an error
    /// opening it is reported there, when the Store is first used (the opening is tried again).
    public func openStoreAhead() {
        guard (try? context.hasState()) == true else { return }
        Task { [context] in _ = try? await context.openStore() }
    }

    /// Connections to agents this controller has set up, replacements included (gRPC's own
    /// reconnection of a kept connection after it broke is not counted here; the agent counts
    /// every connection it accepts).
    public var agentConnectionsOpened: Int { session.agents.connectionsOpened }

    // MARK: - Spec

    /// Loads and validates the spec; throws `ControllerError.invalidSpec` with every diagnostic
    /// when it has errors. Warnings come back with the intent.
    public static func loadSpec(_ paths: [String]) throws -> (intent: FleetIntent, warnings: [Diagnostic]) {
        let result = SpecLoader().load(paths: paths)
        guard let intent = result.intent else { throw ControllerError.invalidSpec(result.diagnostics) }
        return (intent, result.diagnostics)
    }

    // MARK: - Files and the lease

    /// The simulated fleet's file in the state directory.
    public var simulatedFleetURL: URL { context.simulatedFleetURL }

    var context: ControllerContext {
        ControllerContext(
            stateDirectory: stateDirectory, storeLocation: storeLocation, masterKeyPath: masterKeyPath,
            logger: logger, clock: clock, recorder: recorder, session: session, observers: observers)
    }

    /// A keeper of the Store's lease for this controller, for `reconcile` to run as a service
    /// for its whole run: every `apply` given it runs under that lease instead of taking its own.
    /// Opens (or creates) the Store; takes nothing yet.
    ///
    /// - Parameter ttl: how long the lease lasts unrenewed (`LeaseKeeper.loopTTL`, 15 s); the
    ///   keeper renews it every third of that, and each pass right before each node's batch.
    public func leaseKeeper(ttl: Duration = LeaseKeeper.loopTTL) async throws -> LeaseKeeper {
        LeaseKeeper(
            store: try await context.openStore(), holder: LeaseKeeper.thisController(onHost: observers.host), ttl: ttl,
            clock: clock,
            recorder: recorder, logger: logger)
    }

    // MARK: - Apply

    /// Applies the spec: passes until the fleet converges, only drain waits remain (when
    /// `waitForDrain` is false), or only channels blocked by unreachable nodes remain.
    ///
    /// - Parameters:
    ///   - source: where the spec came from, for the history.
    ///   - rekey: channels to rotate now, on top of whatever is due.
    ///   - onPass: called after each pass, for progress.
    ///   - force: proceed although the Store is empty while kernels hold Meshward's objects
    ///     (the lost-Store recovery), or although the spec removes more than half of the Store's
    ///     channels; without it those are refused with `lostStore` and `massRemoval`. A spec of
    ///     another cluster (`clusterMismatch`) is refused even with it.
    ///   - command: what made the run, for the history (`apply`, `reconcile`); a `rekey` run
    ///     records its selector, a targeted run its target.
    ///   - target: limit the run to one node's channels or one `FROM:TO` (`apply --target`):
    ///     every other channel, and every kernel object between other address pairs (stale
    ///     ones included), is left exactly as it is, and the recorded revision does not change.
    ///   - expected: a plan made earlier (`plan --out`, or the one shown at the confirmation
    ///     prompt). Once the lease is held the plan is made again; when the Store, the kernels
    ///     or the changes differ, nothing is done and `stalePlan` is thrown.
    ///   - planFile: the saved plan's path, for that message; nil for the plan shown at the prompt.
    ///   - lease: the keeper of a lease held for a longer run (`reconcile`); nil takes the
    ///     lease for this run alone and gives it back at the end.
    ///   - lockTimeout: how long to wait while another controller holds the lease (`--lock-timeout`)
    ///     before throwing `leaseWaitTimedOut`; zero refuses at once with `StoreError.leaseHeld`.
    ///     Waits on the controller's clock. Unused with `lease`.
    ///   - onLeaseWait: called once when the wait starts, with who holds the lease.
    public func apply(
        _ intent: FleetIntent, source: String, waitForDrain: Bool, rekey: RekeySelection? = nil,
        force: Bool = false, command: String = "apply", target: ApplyTarget? = nil,
        expected: PlanDocument? = nil, planFile: String? = nil, lease: LeaseKeeper? = nil,
        lockTimeout: Duration = .zero, onLeaseWait: @escaping @Sendable (LeaseWait) async -> Void = { _ in },
        planningOnCache: Bool = false, onPass: @escaping @Sendable (PassReport) async -> Void = { _ in }
    ) async throws -> ApplyDocument {
        let keeper: LeaseKeeper
        if let lease {
            keeper = lease
        } else {
            keeper = LeaseKeeper(
                store: try await context.openStore(), holder: LeaseKeeper.thisController(onHost: observers.host),
                ttl: LeaseKeeper.loopTTL,
                clock: clock, sleeper: clock, recorder: recorder, logger: logger)
        }
        let store = keeper.store
        try Self.refuseOtherCluster(
            intent, recorded: try await session.settings(under: lease?.lease, in: store)?.cluster,
            directory: stateDirectory)
        if !force {
            try await refuseLostStore(intent, store: store)
            let records = try await store.loadChannels()
            let scope = try target.map { try FleetScope(target: $0, intent: intent, records: records) }
            try Self.refuseMassRemoval(
                scope?.intent ?? intent, records: scope?.records ?? records, held: records.count,
                directory: stateDirectory)
        }
        var command = rekey.map { "rekey \($0.commandLine)" } ?? command
        if let target { command += " --target \(target.argument)" }
        if lease != nil || lockTimeout == .zero {
            try await keeper.acquire()
        } else {
            try await keeper.acquire(waitingUpTo: lockTimeout, onWait: onLeaseWait)
        }
        do {
            let run = { [self] () async throws -> ApplyDocument in
                // The plan made again under the lease reads the fleet; the first pass reuses
                // that reading (taken under this lease, moments before) instead of a third one.
                var reading: FleetObservation?
                if let expected {
                    let now = try await PlanRehearsal(context: context).rehearse(intent, target: target)
                    let reasons = PlanComparison.differences(saved: expected, now: now.plan)
                    if !reasons.isEmpty { throw ControllerError.stalePlan(file: planFile, reasons: reasons) }
                    reading = now.reading
                }
                return try await ApplyWorkflow(context: context, store: store).run(
                    intent, source: source, command: command, waitForDrain: waitForDrain, rekey: rekey,
                    target: target, fence: keeper, lease: keeper.lease, firstReading: reading,
                    planningOnCache: planningOnCache, onPass: onPass)
            }
            // A one-shot run keeps its own lease renewed beside it; a loop's keeper does that already.
            let document = lease == nil ? try await keeper.whileRenewing(run) : try await run()
            if lease == nil { await keeper.release() }
            return document
        } catch {
            if lease == nil { await keeper.release() }
            throw error
        }
    }

    // MARK: - Plan, status and history

    /// What `apply` would do, stage by stage, without writing anything (`PlanRehearsal`).
    ///
    /// With `target`, only the target's channels are planned (what `apply --target` would do);
    /// the document's `target` says so, and a changed revision alone is no change (a targeted
    /// run does not record it).
    public func plan(_ spec: FleetIntent, target: ApplyTarget? = nil, refresh: Bool = true) async throws -> PlanDocument
    {
        try await PlanRehearsal(context: context).plan(spec, target: target, refresh: refresh)
    }

    /// Per node and per channel, as the kernels and the Store show them now (`StatusReport`).
    /// Needs no spec: what it knows of the fleet comes from the last `apply`.
    ///
    /// `channelFilter` narrows the channel list (`--step`, `--drift`, `--channel`); the summary
    /// always counts every channel read.
    public func status(
        node filter: String? = nil, channels channelFilter: StatusFilter = StatusFilter()
    ) async throws -> StatusDocument {
        try await StatusReport(context: context).status(node: filter, channels: channelFilter)
    }

    /// Applied revisions, newest first.
    public func history(limit: Int? = nil) async throws -> HistoryDocument {
        try await StatusReport(context: context).history(limit: limit)
    }

    /// The target of `operation` with a placeholder generation's SPI shown as `new-N`.
    static func label(_ operation: KernelOperation, placeholders: [SPI: Int]) -> String {
        PlanRehearsal.label(operation, placeholders: placeholders)
    }
}
