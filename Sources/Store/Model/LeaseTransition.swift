import Foundation
import Logging

/// The lease's transitions, as every Store makes them, on the Store's clock (`now`: the
/// caller's for SQLite, the server's for PostgreSQL), inside the transaction that read `current`
/// and writes the result.
package enum LeaseTransition {
    /// The lease `holder` gets by acquiring it while `current` is stored: renewed when `holder`
    /// holds it (its epoch and first acquisition kept), else taken with `nextEpoch()` (the epoch
    /// after the highest ever stored). Throws `StoreError.leaseHeld` while another holder's lease
    /// is live at `now`.
    package static func acquire(
        current: Lease?, holder: String, ttl: Duration, now: Date, nextEpoch: () throws -> Int64
    ) throws -> Lease {
        if let current, current.holder != holder, current.isLive(at: now) {
            throw StoreError.leaseHeld(holder: current.holder, expires: current.expiresAt)
        }
        let expires = now.addingTimeInterval(ttl.seconds)
        if let current, current.holder == holder {
            return Lease(holder: holder, acquiredAt: current.acquiredAt, expiresAt: expires, epoch: current.epoch)
        }
        return Lease(holder: holder, acquiredAt: now, expiresAt: expires, epoch: try nextEpoch())
    }

    /// The lease `holder` takes from `previous` (a holder known to be gone) even while it is
    /// live, with `nextEpoch()`. Throws `StoreError.leaseHeld` when anyone but `previous` or
    /// `holder` holds a live lease at `now`, so a lease that changed hands meanwhile is never
    /// broken.
    package static func takeOver(
        current: Lease?, from previous: String, holder: String, ttl: Duration, now: Date,
        nextEpoch: () throws -> Int64
    ) throws -> Lease {
        if let current, current.holder != previous, current.holder != holder, current.isLive(at: now) {
            throw StoreError.leaseHeld(holder: current.holder, expires: current.expiresAt)
        }
        return Lease(
            holder: holder, acquiredAt: now, expiresAt: now.addingTimeInterval(ttl.seconds), epoch: try nextEpoch())
    }

    /// Logs an acquisition that took the lease: over an expired one, or a free one. A renewal
    /// by the holder logs nothing.
    package static func logAcquired(_ lease: Lease, previous: Lease?, logger: Logger) {
        if let previous, previous.holder != lease.holder {
            logger.notice(
                "took over an expired lease",
                metadata: [
                    "lease.holder": "\(lease.holder)", "lease.previous": "\(previous.holder)",
                    "lease.epoch": "\(lease.epoch)",
                ])
        } else if previous == nil {
            logger.info(
                "acquired the lease", metadata: ["lease.holder": "\(lease.holder)", "lease.epoch": "\(lease.epoch)"])
        }
    }

    /// Logs a take-over from a controller that exited.
    package static func logTakenOver(_ lease: Lease, from previous: String, logger: Logger) {
        logger.notice(
            "took over the lease of a controller that exited",
            metadata: [
                "lease.holder": "\(lease.holder)", "lease.previous": "\(previous)", "lease.epoch": "\(lease.epoch)",
            ])
    }
}
