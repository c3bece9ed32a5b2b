import DesiredState
import Foundation
import Logging
import Reconciler
import ServiceLifecycle
import Store

/// The controller loop, run under `ServiceGroup` (which turns SIGTERM into a graceful
/// shutdown): every `interval` on its clock, and at once when `reload` fires (SIGHUP, a spec
/// file changed: `SpecWatcher`), reload the spec and run passes until the fleet converges or
/// only drain waits remain. Between cycles it waits on the clock and the trigger together:
/// nothing polls, and tests advance the clock instead of sleeping.
///
/// A spec that stops validating is reported and the last good one is kept; a failing cycle is
/// retried with backoff (1 s, 2 s, 4 s ... up to the interval).
///
/// With a `LeaseKeeper` beside it, the loop runs cycles only while the keeper leads
/// (controller-runtime runs reconcilers only while elected): standing by is a state, not a
/// failed cycle. A standby reports `CycleOutcome.standby` and waits for the keeper to lead, the
/// trigger, or the interval (when it reports `standby` again); it never calls `apply`. Once the
/// keeper leads it runs a cycle at once. A cycle that finds the lease gone (the fence has
/// already stopped its sends) goes back to waiting.
///
/// While nodes are unreachable, the wait between full cycles is spent retrying them alone
/// (design.md §10): after `firstRetry` (1 s), then backing off by doubling to `retryCeiling`
/// (4 s), the loop observes only those nodes, and as soon as one answers it runs the next cycle
/// at once, so a host that comes back is restored within seconds, not at the next interval.
/// A node restored so is logged with the time from the cycle that first found it unreachable
/// to the end of the cycle that restored it, and reported in that cycle's `restored`.
public struct ReconcileService: Service {
    /// The first retry of unreachable nodes after a cycle.
    public static let firstRetry: Duration = .seconds(1)
    /// The longest wait between two retries of unreachable nodes.
    public static let retryCeiling: Duration = .seconds(4)

    private let controller: MeshwardController
    private let specPaths: [String]
    private let interval: Duration
    private let once: Bool
    private let reload: ReloadTrigger
    private let clock: any ReconcilerClock
    private let logger: Logger
    private let onCycle: @Sendable (Result<ApplyDocument, any Error>) async -> Void
    /// Passed to every cycle's `apply`: lets a cycle remove more than half of the Store's
    /// channels, or recover a lost Store (`reconcile --force`).
    private let force: Bool
    /// The lease held for the whole run (a `LeaseKeeper` running beside this service): cycles
    /// run only while it leads. Nil takes the lease for each cycle (`--once`).
    private let lease: LeaseKeeper?
    /// Told how every cycle ended (metrics, readiness).
    private let recorder: any ReconcileRecorder

    public init(
        controller: MeshwardController, specPaths: [String], interval: Duration, once: Bool,
        reload: ReloadTrigger, clock: any ReconcilerClock = SystemClock(), logger: Logger, force: Bool = false,
        lease: LeaseKeeper? = nil, recorder: any ReconcileRecorder = DiscardingRecorder(),
        onCycle: @escaping @Sendable (Result<ApplyDocument, any Error>) async -> Void = { _ in }
    ) {
        self.lease = lease
        self.recorder = recorder
        self.clock = clock
        self.controller = controller
        self.specPaths = specPaths
        self.interval = interval
        self.once = once
        self.reload = reload
        self.logger = logger
        self.onCycle = onCycle
        self.force = force
    }

    public func run() async throws {
        var lastGood: FleetIntent?
        var consecutiveFailures = 0
        var unreachableSince: [String: Date] = [:]
        // A cycle woken by drift alone plans on the watch's cache; the first cycle, and every
        // cycle the interval starts (the anti-entropy resynchronisation), reads every node.
        var planningOnCache = false
        let reload = self.reload
        controller.context.session.watch.onDrift { node in reload.fire("\(Self.driftReason) \(node)") }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if let lease, !lease.role.isLeading {
                await standBy(until: lease)
                continue
            }
            let result: Result<ApplyDocument, any Error>
            let cycleStart = clock.now()
            do {
                let intent: FleetIntent
                do {
                    intent = try MeshwardController.loadSpec(specPaths).intent
                    lastGood = intent
                } catch {
                    guard let lastGood, !once else { throw error }
                    logger.error(
                        "the spec does not validate; keeping the last good one", metadata: ["error": "\(error)"])
                    intent = lastGood
                }
                var document = try await controller.apply(
                    intent, source: specPaths.joined(separator: " "), waitForDrain: false, force: force,
                    command: "reconcile", lease: lease, planningOnCache: planningOnCache)
                let restored = track(
                    &unreachableSince, unreachable: document.unreachable.map(\.node), nodes: intent.nodes.map(\.name),
                    cycleStart: cycleStart)
                if !restored.isEmpty { document.restored = restored }
                logger.notice(
                    "cycle done",
                    metadata: [
                        "outcome": "\(document.outcome.rawValue)", "operations": "\(document.operations)",
                        "passes": "\(document.passes)",
                    ])
                result = .success(document)
                consecutiveFailures = 0
            } catch {
                if let lease, !lease.role.isLeading, Self.isLeaseLost(error) {
                    // Another controller took the lease during the cycle: the fence stopped its
                    // sends, and this controller is a standby now, not a failing leader.
                    logger.notice(
                        "the cycle stopped: this controller no longer holds the lease",
                        metadata: ["error": "\(error)"])
                    continue
                }
                logger.error("cycle failed", metadata: ["error": "\(error)"])
                result = .failure(error)
                consecutiveFailures += 1
            }
            recorder.record(cycle: CycleOutcome(result))
            recorder.record(watch: controller.context.session.watch.summary)
            await onCycle(result)
            if once {
                switch result {
                case .failure(let error): throw error
                case .success(let document) where document.outcome == .blocked || !document.failures.isEmpty:
                    throw ReconcileError.incomplete(
                        outcome: document.outcome.rawValue, failures: document.failures.count)
                case .success: return
                }
            }
            // A cycle that lost the lease goes back to waiting to lead, not to its interval.
            if let lease, !lease.role.isLeading { continue }
            let wait =
                consecutiveFailures == 0
                ? interval : min(interval, .seconds(1 << min(consecutiveFailures - 1, 16)))
            let nextCycle = clock.now().addingTimeInterval(wait.timeInterval)
            let reasons: [String]
            if consecutiveFailures == 0, let intent = lastGood, !unreachableSince.isEmpty {
                reasons = await retryUnreachable(Set(unreachableSince.keys), of: intent, until: nextCycle)
            } else {
                reasons = await waitForNextCycle(until: nextCycle)
            }
            planningOnCache = !reasons.isEmpty && reasons.allSatisfy { $0.hasPrefix(Self.driftReason) }
        }
    }

    /// Updates `since` (each unreachable node and when it was first found so) after a cycle
    /// that began at `cycleStart` and found `unreachable`, and returns the nodes it restored:
    /// those found unreachable before that this cycle reached. A node the spec dropped is
    /// forgotten, not restored.
    private func track(
        _ since: inout [String: Date], unreachable: [String], nodes: [String], cycleStart: Date
    ) -> [RestoredNode] {
        let now = clock.now()
        let unreachable = Set(unreachable)
        let inSpec = Set(nodes)
        var restored: [RestoredNode] = []
        for (node, first) in since.sorted(by: { $0.key < $1.key }) where !unreachable.contains(node) {
            since[node] = nil
            guard inSpec.contains(node) else { continue }
            let seconds = now.timeIntervalSince(first)
            restored.append(RestoredNode(node: node, unreachableSince: first, restoreSeconds: seconds))
            logger.notice(
                "node restored",
                metadata: [
                    "node": "\(node)", "restore.seconds": "\(String(format: "%.3f", seconds))",
                    "unreachable.since": "\(first)",
                ])
        }
        for node in unreachable where since[node] == nil { since[node] = cycleStart }
        return restored
    }

    /// Spends the wait until `nextCycle` retrying the unreachable `nodes` alone: after
    /// `firstRetry`, then doubling up to `retryCeiling`, observes only them, and returns as soon
    /// as one answers (the next cycle restores it), the trigger fires, `nextCycle` comes, or the
    /// service is shutting down.
    private func retryUnreachable(
        _ nodes: Set<String>, of intent: FleetIntent, until nextCycle: Date
    ) async -> [String] {
        var delay = Self.firstRetry
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // A controller that no longer leads does not contact the fleet.
            if let lease, !lease.role.isLeading { return [] }
            let at = min(clock.now().addingTimeInterval(delay.timeInterval), nextCycle)
            let reasons = await waitForNextCycle(until: at)
            if !reasons.isEmpty || clock.now() >= nextCycle { return reasons }
            let answering: Set<String>
            do {
                answering = try await controller.answeringNodes(nodes, of: intent, lease: lease)
            } catch {
                logger.warning("could not retry the unreachable nodes", metadata: ["error": "\(error)"])
                answering = []
            }
            if !answering.isEmpty {
                logger.notice(
                    "unreachable nodes answer again; reconciling now",
                    metadata: ["nodes": "\(answering.sorted().joined(separator: ","))"])
                return []
            }
            logger.debug(
                "unreachable nodes still do not answer",
                metadata: ["nodes": "\(nodes.sorted().joined(separator: ","))", "retry.seconds": "\(delay)"])
            delay = min(delay * 2, Self.retryCeiling)
        }
        return []
    }

    /// Whether `error` says this controller does not hold the lease: another holds it, or the
    /// one it held was taken over.
    private static func isLeaseLost(_ error: any Error) -> Bool {
        switch error {
        case StoreError.leaseHeld, StoreError.leaseNotHeld: true
        default: false
        }
    }

    /// How a standby's wait ended.
    private enum StandbyWake: Sendable {
        case roleChanged
        case trigger([String])
        case interval
    }

    /// Waits while `keeper` does not lead: returns once it leads, the trigger fires, the
    /// interval passes, or the service is shutting down. Reports `CycleOutcome.standby` first,
    /// once the keeper has found the lease held (a keeper that has not tried yet is not a
    /// standby: the wait then ends at its first answer, so that the loop reports at once), so
    /// that a standby is ready and counted once per interval as it waits.
    private func standBy(until keeper: LeaseKeeper) async {
        let tried = keeper.role != .idle
        if tried { recorder.record(cycle: .standby) }
        logger.debug("standing by: no cycle runs until this controller holds the lease")
        let deadline = clock.now().addingTimeInterval(interval.timeInterval)
        let reload = self.reload
        let clock = self.clock
        let wake = await withGracefulShutdownHandler {
            await withTaskGroup(of: StandbyWake.self) { group in
                group.addTask {
                    await keeper.waitForRole { $0.isLeading || (!tried && $0 != .idle) }
                    return .roleChanged
                }
                group.addTask {
                    let reasons = await reload.wait(until: deadline, on: clock)
                    return reasons.isEmpty ? .interval : .trigger(reasons)
                }
                let first = await group.next() ?? .interval
                group.cancelAll()
                return first
            }
        } onGracefulShutdown: {
            reload.fire("shutting down")
        }
        if case .roleChanged = wake, keeper.role.isLeading {
            logger.notice("leading: running a cycle now")
        }
    }

    /// The reason the watch's drift gives the trigger, before the node's name.
    static let driftReason = "drift seen by the watch on node"

    /// Returns when `deadline` has passed on the clock (no reasons), the trigger fired or the
    /// service is shutting down (the trigger's reasons).
    @discardableResult
    private func waitForNextCycle(until deadline: Date) async -> [String] {
        let reload = self.reload
        let clock = self.clock
        let reasons = await withGracefulShutdownHandler {
            await reload.wait(until: deadline, on: clock)
        } onGracefulShutdown: {
            reload.fire("shutting down")
        }
        if !Task.isShuttingDownGracefully {
            for reason in reasons { logger.notice("\(reason); reloading") }
        }
        return reasons
    }
}
