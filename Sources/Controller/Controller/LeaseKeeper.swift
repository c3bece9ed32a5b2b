import DesiredState
import Foundation
import Logging
import Reconciler
import ServiceLifecycle
import Store
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Holds the Store's lease for one controller: acquires it, renews it, gives it back.
///
/// A single `apply` acquires it for its run, renews it every third of its TTL while it runs
/// (`whileRenewing`) and releases it at the end; every pass also confirms it (renewing, same
/// epoch) before sending anything, as its `WriteFence`. `reconcile` runs it as a
/// long-lived `Service` beside the loop (as controller-runtime's leader election does): it keeps
/// the lease across cycles and the waits between them, renewing every third of its TTL, tries
/// to take a free lease whenever it holds none, and releases it when the group shuts down.
/// The loop runs cycles only while the keeper leads and waits for it otherwise
/// (`waitUntilLeading`). Every write the Store makes under it is fenced by holder and epoch, so
/// a controller whose lease another took over can no longer write.
///
/// Its one state is a `LeaseRole` under one lock: every answer of the Store is an `Event` that
/// `StateMachine` turns into the next role and the `Actions` to take (a log line, what the
/// recorder is told, whom to wake, when to try next), performed here outside the lock.
public final class LeaseKeeper: Service, WriteFence {
    /// The TTL of a reconcile loop's lease: renewed every 5 s, it lapses 15 s after a dead or
    /// cut-off leader's last renewal, and a standby takes it right after (`lapseMargin`).
    public static let loopTTL: Duration = .seconds(15)

    /// The host this controller names itself by: this machine's name, unless a test harness
    /// makes the process stand for another host (`ControllerObservers.hostName`).
    let host: String
    /// This controller: `HOST pid N`.
    public let holder: String
    /// The Store the lease fences; the controller's runs use this very instance.
    let store: any ControllerStore
    private let ttl: Duration
    private let clock: any ReconcilerClock
    private let sleeper: any ReconcilerClock
    private let timer: any ReconcilerClock
    private let logger: Logger
    private let recorder: any ReconcileRecorder
    /// How long after the holder's expiry a standby tries again.
    static let lapseMargin: Duration = .milliseconds(250)

    private struct State {
        var machine: StateMachine
        /// Who waits for the role to meet a condition (`waitForRole`), woken by the event that
        /// makes it hold.
        var waiters:
            [UUID: (condition: @Sendable (LeaseRole) -> Bool, continuation: CheckedContinuation<Void, Never>)] =
                [:]
    }

    private let state: Mutex<State>

    /// - Parameters:
    ///   - clock: the controller's clock, for the lease's times.
    ///   - sleeper: what a command waiting for a held lease waits on (`acquire(waitingUpTo:)`):
    ///     the controller's clock, so that a test's manual clock jumps through the wait.
    ///   - timer: what the renewals wait on between turns (`run`, `whileRenewing`): the wall
    ///     clock by default. It is not the controller's clock because a renewal waits beside the
    ///     run, and a test's manual clock, which jumps to every deadline it is asked to sleep
    ///     to, would renew in a busy loop and move the run's own time with it.
    init(
        store: any ControllerStore, holder: String, ttl: Duration, clock: any ReconcilerClock,
        sleeper: any ReconcilerClock = SystemClock(), timer: any ReconcilerClock = SystemClock(),
        recorder: any ReconcileRecorder = DiscardingRecorder(), host: String = ProcessInfo.processInfo.hostName,
        logger: Logger
    ) {
        self.host = host
        self.recorder = recorder
        self.store = store
        self.holder = holder
        self.ttl = ttl
        self.clock = clock
        self.sleeper = sleeper
        self.timer = timer
        self.logger = logger
        state = Mutex(State(machine: StateMachine(holder: holder, ttl: ttl.timeInterval)))
    }

    /// Where this controller stands with the lease, as the Store last answered.
    public var role: LeaseRole { state.withLock { $0.machine.role } }

    /// The lease while this controller holds it.
    public var lease: Lease? { role.lease }

    /// Returns once this controller leads: at once when it does, else when the keeper next
    /// takes the lease. Returns as well when the waiting task is cancelled; the caller reads
    /// `role` to tell which.
    public func waitUntilLeading() async {
        await waitForRole { $0.isLeading }
    }

    /// Returns once the role meets `condition`: at once when it does, else at the first answer
    /// of the Store that makes it so. Returns as well when the waiting task is cancelled.
    public func waitForRole(where condition: @escaping @Sendable (LeaseRole) -> Bool) async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if Task.isCancelled || condition(state.machine.role) { return true }
                    state.waiters[id] = (condition, continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
        }
    }

    /// Feeds `event` to the state machine and performs what it returns: the recorder told, the
    /// line logged, and the waiters whose condition the new role meets woken.
    @discardableResult
    private func handle(_ event: Event, from source: Source) -> Actions {
        let now = clock.now()
        let (actions, woken) = state.withLock { state in
            let actions = state.machine.handle(event, from: source, at: now)
            let role = state.machine.role
            let ready = state.waiters.filter { $0.value.condition(role) }
            for id in ready.keys { state.waiters[id] = nil }
            return (actions, ready.values.map(\.continuation))
        }
        if let record = actions.record { recorder.record(lease: record) }
        if let line = actions.log { logger.log(level: line.level, line.message, metadata: line.metadata) }
        for waiter in woken { waiter.resume() }
        return actions
    }

    /// The event of a Store call that threw `error`.
    private static func event(for error: any Error) -> Event {
        switch error {
        case StoreError.leaseHeld(let holder, let expires): .heldElsewhere(holder: holder, expires: expires)
        case StoreError.leaseNotHeld(_, let current): .lost(current: current)
        default: .storeFailed(error: "\(error)")
        }
    }

    /// Acquires the lease, or renews it when this controller holds it already. A live lease
    /// whose holder is a controller on this host that has exited (killed, crashed) is taken over
    /// at once instead of waiting out its TTL. Throws `StoreError.leaseHeld` while another live
    /// controller holds it. Tells the recorder where the lease stands.
    @discardableResult
    public func acquire() async throws -> Lease {
        try await take(from: .call)
    }

    @discardableResult
    private func take(from source: Source) async throws -> Lease {
        do {
            let lease: Lease
            do {
                lease = try await store.acquireLease(holder: holder, ttl: ttl, now: clock.now())
            } catch StoreError.leaseHeld(let current, _) where Self.isExitedLocalController(current, host: host) {
                lease = try await store.takeOverLease(from: current, holder: holder, ttl: ttl, now: clock.now())
            }
            handle(.held(lease), from: source)
            return lease
        } catch {
            handle(Self.event(for: error), from: source)
            throw error
        }
    }

    /// Renews the lease this controller holds, at `now` on its clock.
    @discardableResult
    private func renew(at now: Date, from source: Source) async throws -> Lease {
        do {
            let lease = try await store.renewLease(holder: holder, ttl: ttl, now: now)
            handle(.held(lease), from: source)
            return lease
        } catch {
            handle(Self.event(for: error), from: source)
            throw error
        }
    }

    /// Acquires the lease as `acquire()` does, waiting while another live controller holds it:
    /// tries again every `poll` (or at the holder's expiry, when sooner) until `timeout` has passed
    /// on the sleeper's clock, then throws `ControllerError.leaseWaitTimedOut` naming the holder.
    /// `onWait` is called once, when the first try finds the lease held, with who holds it; a zero
    /// `timeout` never waits. Nothing is written while waiting.
    @discardableResult
    public func acquire(
        waitingUpTo timeout: Duration, poll: Duration = .seconds(1),
        onWait: @Sendable (LeaseWait) async -> Void = { _ in }
    ) async throws -> Lease {
        let started = sleeper.now()
        let deadline = started.addingTimeInterval(timeout.timeInterval)
        var reported = false
        while true {
            let seen: (holder: String, expires: Date)
            do {
                return try await acquire()
            } catch StoreError.leaseHeld(let holder, let expires) {
                seen = (holder, expires)
            }
            let current = try? await store.currentLease()
            let wait = LeaseWait(
                holder: seen.holder, epoch: current.flatMap { $0.holder == seen.holder ? $0.epoch : nil },
                expiresAt: seen.expires, timeout: timeout)
            let now = sleeper.now()
            guard now < deadline else {
                throw ControllerError.leaseWaitTimedOut(wait, waited: now.timeIntervalSince(started))
            }
            if !reported {
                reported = true
                logger.notice(
                    "waiting for the lease another controller holds",
                    metadata: [
                        "lease.current": "\(wait.holder)", "lease.epoch": "\(wait.epoch.map(String.init) ?? "?")",
                        "lease.expires": "\(wait.expiresAt)", "lease.timeout": "\(SpecDuration.format(timeout))",
                    ])
                await onWait(wait)
            }
            var wake = min(deadline, now.addingTimeInterval(poll.timeInterval))
            // The holder's expiry is judged by the lease's clock; waking at it is only a hint.
            let untilExpiry = seen.expires.timeIntervalSince(clock.now())
            if untilExpiry > 0 { wake = min(wake, now.addingTimeInterval(untilExpiry)) }
            try await sleeper.sleep(until: wake)
        }
    }

    /// Renews the lease (same holder, same epoch) and answers until when it holds by this
    /// controller's clock: `now` (read before the renewal was sent) plus the TTL. A Store on a
    /// server sets the expiry by its own clock when the renewal reaches it, which is later, so
    /// the answer never lies past the expiry a standby judges by, however the two clocks
    /// disagree. Throws `StoreError.leaseNotHeld` when another controller took it over, so the
    /// pass sends nothing.
    public func confirm(at now: Date) async throws -> Date {
        try await renew(at: now, from: .call)
        return now.addingTimeInterval(ttl.timeInterval)
    }

    /// Runs `body` (a one-shot command's run, under the lease this keeper acquired) while a task
    /// beside it renews the lease every third of its TTL on the keeper's timer (the wall clock
    /// unless a test gives another), so that the lease holds through drain waits and long passes
    /// however long they take, and still lapses one TTL after this process dies. A lease another
    /// controller took over ends the renewing (the next pass's fence finds it lost and sends
    /// nothing); a Store that does not answer is tried again at the next turn, and every pass
    /// still renews before it sends.
    public func whileRenewing<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let renewing = Task { [self] in
            let interval = ttl.timeInterval / 3
            while !Task.isCancelled {
                do {
                    try await timer.sleep(until: timer.now().addingTimeInterval(interval))
                } catch {
                    return
                }
                if Task.isCancelled { return }
                do {
                    try await renew(at: clock.now(), from: .renewal)
                } catch StoreError.leaseNotHeld {
                    return
                } catch {
                    // Logged by `handle`: the next pass's fence renews or stops the run.
                }
            }
        }
        defer { renewing.cancel() }
        return try await body()
    }

    /// Gives the lease back so that another controller can start at once.
    public func release() async {
        handle(.released(error: nil), from: .call)
        do {
            try await store.releaseLease(holder: holder)
        } catch {
            handle(.released(error: "\(error)"), from: .call)
        }
    }

    /// Keeps the lease until the service group shuts down, then releases it. A standby tries
    /// again every third of the TTL, and also right after the holder's lease is due to lapse
    /// (`lapseMargin` after the expiry it last saw), so a dead leader is replaced about one TTL
    /// after its last renewal rather than up to a turn later. Turns wait on the keeper's timer.
    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let nextTurn = await keepOnce()
            let timer = self.timer
            let until = timer.now().addingTimeInterval(nextTurn)
            try? await cancelWhenGracefulShutdown { try await timer.sleep(until: until) }
        }
        if lease != nil { await release() }
    }

    /// One turn of the loop: renew a held lease, or try to take a free one. Returns the seconds
    /// until the next turn, as the Store's answer left the role.
    @discardableResult
    func keepOnce() async -> TimeInterval {
        do {
            if lease != nil {
                try await renew(at: clock.now(), from: .turn)
            } else {
                try await take(from: .turn)
            }
        } catch {
            // The answer went through `handle`, which logged it as this turn's.
        }
        let now = clock.now()
        return state.withLock { $0.machine.nextTurn(at: now) }
    }

    /// `HOST pid N` for this process on `host`.
    static func thisController(onHost host: String) -> String {
        "\(host) pid \(ProcessInfo.processInfo.processIdentifier)"
    }

    /// Whether `holder` names a controller process on `host`, this controller's (`HOST pid N`,
    /// as `thisController` writes it), that no longer exists. Another host's holder, or a
    /// process that still exists (even an unrelated one that reused the pid), is never judged
    /// exited.
    static func isExitedLocalController(_ holder: String, host: String) -> Bool {
        let prefix = "\(host) pid "
        guard holder.hasPrefix(prefix), let pid = Int32(holder.dropFirst(prefix.count)), pid > 0,
            pid != getpid()
        else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }
}
