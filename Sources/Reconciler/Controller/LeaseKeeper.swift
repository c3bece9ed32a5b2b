import DesiredState
import Foundation
import Logging
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
/// Every write the Store makes under it is fenced by holder and epoch, so a controller whose
/// lease another took over can no longer write.
public final class LeaseKeeper: Service, WriteFence {
    /// The TTL of a reconcile loop's lease: renewed every 5 s, it lapses 15 s after a dead or
    /// cut-off leader's last renewal, and a standby takes it right after (`lapseMargin`).
    public static let loopTTL: Duration = .seconds(15)

    /// This controller: `HOST pid N`.
    public let holder: String
    /// The Store the lease fences; the controller's runs use this very instance.
    let store: any ControllerStore
    private let ttl: Duration
    private let clock: any ReconcilerClock
    private let sleeper: any ReconcilerClock
    private let logger: Logger
    private let recorder: any ReconcileRecorder
    /// The lease as last acquired or renewed; nil while this controller holds none.
    private let held = Mutex<Lease?>(nil)
    /// When the lease another controller holds lapses unless renewed, as this standby last saw it.
    private let heldElsewhereUntil = Mutex<Date?>(nil)
    /// How long after the holder's expiry a standby tries again.
    static let lapseMargin: Duration = .milliseconds(250)
    /// The holder last reported as holding the lease, so that waiting is logged once.
    private let reportedHolder = Mutex<String?>(nil)

    /// - Parameters:
    ///   - clock: the controller's clock, for the lease's times.
    ///   - sleeper: what the renewal loop waits on (the wall clock; a test's manual clock would
    ///     jump straight through the waits).
    init(
        store: any ControllerStore, holder: String, ttl: Duration, clock: any ReconcilerClock,
        sleeper: any ReconcilerClock = SystemClock(), recorder: any ReconcileRecorder = DiscardingRecorder(),
        logger: Logger
    ) {
        self.recorder = recorder
        self.store = store
        self.holder = holder
        self.ttl = ttl
        self.clock = clock
        self.sleeper = sleeper
        self.logger = logger
    }

    /// The lease while this controller holds it.
    public var lease: Lease? { held.withLock { $0 } }

    /// Acquires the lease, or renews it when this controller holds it already. A live lease
    /// whose holder is a controller on this host that has exited (killed, crashed) is taken over
    /// at once instead of waiting out its TTL. Throws `StoreError.leaseHeld` while another live
    /// controller holds it. Tells the recorder where the lease stands.
    @discardableResult
    public func acquire() async throws -> Lease {
        let lease: Lease
        do {
            lease = try await store.acquireLease(holder: holder, ttl: ttl, now: clock.now())
        } catch StoreError.leaseHeld(let current, _) where Self.isExitedLocalController(current) {
            lease = try await store.takeOverLease(from: current, holder: holder, ttl: ttl, now: clock.now())
        } catch StoreError.leaseHeld(let current, let expires) {
            recorder.record(lease: .standby(holder: current))
            throw StoreError.leaseHeld(holder: current, expires: expires)
        }
        recorder.record(lease: .leading(epoch: lease.epoch))
        let before = held.withLock { held in
            defer { held = lease }
            return held
        }
        let waitedFor = reportedHolder.withLock { reported in
            defer { reported = nil }
            return reported
        }
        if before?.epoch != lease.epoch {
            var metadata: Logger.Metadata = [
                "lease.holder": "\(holder)", "lease.epoch": "\(lease.epoch)",
                "lease.expires": "\(lease.expiresAt)",
            ]
            if let waitedFor { metadata["lease.previous"] = "\(waitedFor)" }
            logger.notice("leading: holds the lease", metadata: metadata)
        }
        return lease
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
        do {
            let lease = try await store.renewLease(holder: holder, ttl: ttl, now: now)
            held.withLock { $0 = lease }
            return now.addingTimeInterval(ttl.timeInterval)
        } catch {
            held.withLock { $0 = nil }
            throw error
        }
    }

    /// Runs `body` (a one-shot command's run, under the lease this keeper acquired) while a task
    /// beside it renews the lease every third of its TTL by the wall clock, so that the lease
    /// holds through drain waits and long passes however long they take, and still lapses one
    /// TTL after this process dies. A lease another controller took over ends the renewing (the
    /// next pass's fence finds it lost and sends nothing); a Store that does not answer is
    /// tried again at the next turn, and every pass still renews before it sends.
    public func whileRenewing<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let renewing = Task { [self] in
            let interval = ttl / 3
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: interval)
                } catch {
                    return
                }
                do {
                    _ = try await confirm(at: clock.now())
                } catch StoreError.leaseNotHeld(_, let current) {
                    logger.error(
                        "lost the lease; this run writes no kernel from now on",
                        metadata: ["lease.holder": "\(holder)", "lease.current": "\(current?.holder ?? "nobody")"])
                    return
                } catch {
                    // The Store did not answer: the next pass's fence renews or stops the run.
                    logger.warning(
                        "could not renew the lease; trying again at the next turn",
                        metadata: ["lease.holder": "\(holder)", "error": "\(error)"])
                }
            }
        }
        defer { renewing.cancel() }
        return try await body()
    }

    /// Gives the lease back so that another controller can start at once.
    public func release() async {
        held.withLock { $0 = nil }
        do {
            try await store.releaseLease(holder: holder)
        } catch {
            logger.warning(
                "could not release the lease; it expires by itself",
                metadata: ["lease.holder": "\(holder)", "error": "\(error)"])
        }
    }

    /// Keeps the lease until the service group shuts down, then releases it. A standby tries
    /// again every third of the TTL, and also right after the holder's lease is due to lapse
    /// (`lapseMargin` after the expiry it last saw), so a dead leader is replaced about one TTL
    /// after its last renewal rather than up to a turn later.
    public func run() async throws {
        let interval = ttl / 3
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await keepOnce()
            let now = sleeper.now()
            var wake = now.addingTimeInterval(interval.timeInterval)
            // The expiry is the Store's clock (the server's on PostgreSQL): waking at it is a hint,
            // and the Store judges the lapse.
            if let lapse = heldElsewhereUntil.withLock({ $0 })?.addingTimeInterval(Self.lapseMargin.timeInterval),
                lapse > now, lapse < wake
            {
                wake = lapse
            }
            let sleeper = self.sleeper
            let until = wake
            try? await cancelWhenGracefulShutdown { try await sleeper.sleep(until: until) }
        }
        if lease != nil { await release() }
    }

    /// One turn of the loop: renew a held lease, or try to take a free one.
    func keepOnce() async {
        do {
            if lease != nil {
                _ = try await confirm(at: clock.now())
            } else {
                try await acquire()
            }
            heldElsewhereUntil.withLock { $0 = nil }
        } catch StoreError.leaseHeld(let current, let expires) {
            heldElsewhereUntil.withLock { $0 = expires }
            let first = reportedHolder.withLock { reported in
                defer { reported = current }
                return reported != current
            }
            if first {
                logger.notice(
                    "standing by: another controller holds the lease",
                    metadata: ["lease.current": "\(current)", "lease.expires": "\(expires)"])
            }
        } catch StoreError.leaseNotHeld(_, let current) {
            if let current { recorder.record(lease: .standby(holder: current.holder)) }
            logger.error(
                "lost the lease; this controller writes no kernel until it holds it again",
                metadata: ["lease.holder": "\(holder)", "lease.current": "\(current?.holder ?? "nobody")"])
        } catch {
            logger.error("could not keep the lease", metadata: ["lease.holder": "\(holder)", "error": "\(error)"])
        }
    }

    /// `HOST pid N` for this process (`ControllerHost.name`).
    static var thisController: String {
        "\(ControllerHost.name) pid \(ProcessInfo.processInfo.processIdentifier)"
    }

    /// Whether `holder` names a controller process on this host (`HOST pid N`, as
    /// `thisController` writes it) that no longer exists. Another host's holder, or a process
    /// that still exists (even an unrelated one that reused the pid), is never judged exited.
    static func isExitedLocalController(_ holder: String) -> Bool {
        let prefix = "\(ControllerHost.name) pid "
        guard holder.hasPrefix(prefix), let pid = Int32(holder.dropFirst(prefix.count)), pid > 0,
            pid != getpid()
        else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }
}
