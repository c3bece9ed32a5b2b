import Foundation
import Logging
import Reconciler
import Store

extension LeaseKeeper {
    /// Who met the Store's answer, which decides what is logged of it: a turn of the keeper's
    /// own loop (`run`), a one-shot run's renewal beside it (`whileRenewing`), or a call from a
    /// run or a pass (`acquire`, the fence's `confirm`), whose caller reports what it throws.
    enum Source: Sendable, Hashable {
        case turn
        case renewal
        case call
    }

    /// What the Store answered about the lease.
    enum Event: Sendable, Hashable {
        /// This controller took or renewed `lease`.
        case held(Lease)
        /// Another controller holds the lease until `expires`.
        case heldElsewhere(holder: String, expires: Date)
        /// The lease this controller held is gone; `current` is the Store's lease now, if any.
        case lost(current: Lease?)
        /// The Store did not answer (`error` describes why); nothing is known of the lease.
        case storeFailed(error: String)
        /// This controller gave the lease back (`error`: the Store did not take it back, and
        /// it expires by itself).
        case released(error: String?)
    }

    /// A line the keeper logs; its wording is kept here, in one place.
    enum LogLine: Sendable, Hashable {
        /// `leading: holds the lease`, naming the holder waited for, if any.
        case leading(Lease, previous: String?)
        case standingBy(holder: String, expires: Date)
        /// The keeper's turn found the lease gone.
        case lostByController(holder: String, current: String?)
        /// A one-shot run's renewal found the lease gone.
        case lostByRun(holder: String, current: String?)
        case couldNotKeep(holder: String, error: String)
        case couldNotRenew(holder: String, error: String)
        case couldNotRelease(holder: String, error: String)

        var level: Logger.Level {
            switch self {
            case .leading, .standingBy: .notice
            case .lostByController, .lostByRun, .couldNotKeep: .error
            case .couldNotRenew, .couldNotRelease: .warning
            }
        }

        var message: Logger.Message {
            switch self {
            case .leading: "leading: holds the lease"
            case .standingBy: "standing by: another controller holds the lease"
            case .lostByController: "lost the lease; this controller writes no kernel until it holds it again"
            case .lostByRun: "lost the lease; this run writes no kernel from now on"
            case .couldNotKeep: "could not keep the lease"
            case .couldNotRenew: "could not renew the lease; trying again at the next turn"
            case .couldNotRelease: "could not release the lease; it expires by itself"
            }
        }

        var metadata: Logger.Metadata {
            switch self {
            case .leading(let lease, let previous):
                var metadata: Logger.Metadata = [
                    "lease.holder": "\(lease.holder)", "lease.epoch": "\(lease.epoch)",
                    "lease.expires": "\(lease.expiresAt)",
                ]
                if let previous { metadata["lease.previous"] = "\(previous)" }
                return metadata
            case .standingBy(let holder, let expires):
                return ["lease.current": "\(holder)", "lease.expires": "\(expires)"]
            case .lostByController(let holder, let current), .lostByRun(let holder, let current):
                return ["lease.holder": "\(holder)", "lease.current": "\(current ?? "nobody")"]
            case .couldNotKeep(let holder, let error), .couldNotRenew(let holder, let error),
                .couldNotRelease(let holder, let error):
                return ["lease.holder": "\(holder)", "error": "\(error)"]
            }
        }
    }

    /// What the keeper does after an event: each is performed outside the lock.
    struct Actions: Sendable, Hashable {
        /// The line to log, if any.
        var log: LogLine?
        /// What to tell the recorder, if anything.
        var record: LeaseState?
        /// The controller has just come to lead: wake whoever waits for it (`waitUntilLeading`).
        var startedLeading = false
        /// The controller has just stopped leading.
        var stoppedLeading = false
        /// Seconds from the event to the keeper's next turn (`run`).
        var nextTurn: TimeInterval
    }

    /// The lease as this controller knows it, and what each answer of the Store changes: pure,
    /// with no clock and no Store, so that every transition is tested without time.
    struct StateMachine: Sendable {
        /// The role as the last event left it.
        private(set) var role: LeaseRole = .idle
        /// The holder this controller last said it stands by for, so that waiting is logged
        /// once per holder; nil once it leads.
        private(set) var announced: String?
        /// This controller (`HOST pid N`).
        let holder: String
        /// The lease's TTL in seconds; a turn comes every third of it.
        let ttl: TimeInterval

        init(holder: String, ttl: TimeInterval) {
            self.holder = holder
            self.ttl = ttl
        }

        /// Moves to the role `event` leaves this controller in, at `now` on the lease's clock,
        /// and returns what to do about it.
        mutating func handle(_ event: Event, from source: Source, at now: Date) -> Actions {
            let wasLeading = role.isLeading
            var log: LogLine?
            var record: LeaseState?
            switch event {
            case .held(let lease):
                if role.lease?.epoch != lease.epoch {
                    var previous: String?
                    if case .standby(let holder, _) = role { previous = holder }
                    log = .leading(lease, previous: previous ?? announced)
                }
                record = .leading(epoch: lease.epoch)
                role = .leading(lease)
                announced = nil
            case .heldElsewhere(let current, let expires):
                // Only the keeper's own turns say that it stands by: a one-shot run that waits
                // says so itself, and one that does not wait reports the refusal.
                if source == .turn && announced != current {
                    log = .standingBy(holder: current, expires: expires)
                    announced = current
                }
                record = .standby(holder: current)
                role = .standby(holder: current, expires: expires)
            case .lost(let current):
                switch source {
                case .turn: log = .lostByController(holder: holder, current: current?.holder)
                case .renewal: log = .lostByRun(holder: holder, current: current?.holder)
                case .call: log = nil
                }
                record = current.map { .standby(holder: $0.holder) }
                role = .lost(to: current?.holder)
            case .storeFailed(let error):
                // Nothing is known: the role stays, and a pass's fence renews or stops the run.
                switch source {
                case .turn: log = .couldNotKeep(holder: holder, error: error)
                case .renewal: log = .couldNotRenew(holder: holder, error: error)
                case .call: log = nil
                }
            case .released(let error):
                log = error.map { .couldNotRelease(holder: holder, error: $0) }
                role = .idle
            }
            return Actions(
                log: log, record: record, startedLeading: !wasLeading && role.isLeading,
                stoppedLeading: wasLeading && !role.isLeading, nextTurn: nextTurn(at: now))
        }

        /// Seconds from `now` to the keeper's next turn: a third of the TTL, or, for a standby,
        /// `lapseMargin` after the holder's lease is due to lapse when that comes sooner, so
        /// that a dead leader is replaced about one TTL after its last renewal rather than up
        /// to a turn later. The expiry is the Store's clock: waking at it is a hint, and the
        /// Store judges the lapse.
        func nextTurn(at now: Date) -> TimeInterval {
            let turn = ttl / 3
            guard case .standby(_, let expires) = role else { return turn }
            let lapse = expires.addingTimeInterval(LeaseKeeper.lapseMargin.timeInterval).timeIntervalSince(now)
            return lapse > 0 && lapse < turn ? lapse : turn
        }
    }
}
