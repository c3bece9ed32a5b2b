import DesiredState
import Foundation
import Logging
import ServiceLifecycle

/// The controller loop, run under `ServiceGroup` (which turns SIGTERM into a graceful
/// shutdown): every `interval` on its clock, and at once when `reload` fires (SIGHUP, a spec
/// file changed: `SpecWatcher`), reload the spec and run passes until the fleet converges or
/// only drain waits remain. Between cycles it waits on the clock and the trigger together:
/// nothing polls, and tests advance the clock instead of sleeping.
///
/// A spec that stops validating is reported and the last good one is kept; a failing cycle is
/// retried with backoff (1 s, 2 s, 4 s ... up to the interval).
public struct ReconcileService: Service {
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
    /// The lease held for the whole run (a `LeaseKeeper` running beside this service); nil
    /// takes it for each cycle.
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
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let result: Result<ApplyDocument, any Error>
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
                let document = try await controller.apply(
                    intent, source: specPaths.joined(separator: " "), waitForDrain: false, force: force,
                    command: "reconcile", lease: lease)
                logger.notice(
                    "cycle done",
                    metadata: [
                        "outcome": "\(document.outcome.rawValue)", "operations": "\(document.operations)",
                        "passes": "\(document.passes)",
                    ])
                result = .success(document)
                consecutiveFailures = 0
            } catch {
                logger.error("cycle failed", metadata: ["error": "\(error)"])
                result = .failure(error)
                consecutiveFailures += 1
            }
            recorder.record(cycle: CycleOutcome(result))
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
            let wait =
                consecutiveFailures == 0
                ? interval : min(interval, .seconds(1 << min(consecutiveFailures - 1, 16)))
            await waitForNextCycle(after: wait)
        }
    }

    /// Returns when `wait` has passed on the clock, the trigger fired, or the service is
    /// shutting down.
    private func waitForNextCycle(after wait: Duration) async {
        let deadline = clock.now().addingTimeInterval(wait.timeInterval)
        let reload = self.reload
        let clock = self.clock
        let reason = await withGracefulShutdownHandler {
            await reload.wait(until: deadline, on: clock)
        } onGracefulShutdown: {
            reload.fire("shutting down")
        }
        if let reason, !Task.isShuttingDownGracefully { logger.notice("\(reason); reloading") }
    }
}
