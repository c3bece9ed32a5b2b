import Foundation
import GRDB

extension StateStore {
    /// Acquires the writer lease for `holder` until `now + ttl`, and returns it.
    ///
    /// Takes over a lease whose holder let it expire; renews when `holder` already holds it.
    /// Throws `StoreError.leaseHeld` (naming the holder and its expiry) while another holder's
    /// lease is live. A lease that changes hands (or is taken after a release) gets the next
    /// epoch; a renewal keeps it. From then on this instance's writes are fenced by holder and epoch.
    @discardableResult
    public func acquireLease(holder: String, ttl: Duration, now: Date) throws -> Lease {
        let (previous, lease) = try writeUnfenced("acquire the lease") { db -> (Lease?, Lease) in
            let current = try Self.fetchLease(db)
            let lease = try LeaseTransition.acquire(
                current: current, holder: holder, ttl: ttl, now: now, nextEpoch: { try Self.nextEpoch(db) })
            try Self.storeLease(lease, db)
            return (current, lease)
        }
        fence.withLock { $0 = LeaseFence(holder: holder, epoch: lease.epoch) }
        LeaseTransition.logAcquired(lease, previous: previous, logger: logger)
        return lease
    }

    /// Takes the lease from `previous` for `holder` until `now + ttl`, even while `previous`'s
    /// lease is live: for a holder the caller knows is gone (a controller process on this host
    /// that has exited). Throws `StoreError.leaseHeld` when anyone but `previous` or `holder`
    /// holds a live lease by now, so a lease that changed hands meanwhile is never broken.
    /// The lease gets the next epoch.
    @discardableResult
    public func takeOverLease(from previous: String, holder: String, ttl: Duration, now: Date) throws -> Lease {
        let lease = try writeUnfenced("take over the lease") { db -> Lease in
            let lease = try LeaseTransition.takeOver(
                current: try Self.fetchLease(db), from: previous, holder: holder, ttl: ttl, now: now,
                nextEpoch: { try Self.nextEpoch(db) })
            try Self.storeLease(lease, db)
            return lease
        }
        fence.withLock { $0 = LeaseFence(holder: holder, epoch: lease.epoch) }
        LeaseTransition.logTakenOver(lease, from: previous, logger: logger)
        return lease
    }

    /// Extends `holder`'s lease to `now + ttl` and returns it. Throws `StoreError.leaseNotHeld`
    /// when another holder took it over, it was released, or (once this instance holds it) its
    /// epoch moved on; an expired lease nobody took over is renewed under the same epoch.
    @discardableResult
    public func renewLease(holder: String, ttl: Duration, now: Date) throws -> Lease {
        let fenced = fence.withLock { $0 }
        let lease = try writeUnfenced("renew the lease") { db -> Lease in
            guard let current = try Self.fetchLease(db), current.holder == holder,
                fenced.map({ $0.holder != holder || $0.epoch == current.epoch }) ?? true
            else {
                throw StoreError.leaseNotHeld(holder: holder, current: try Self.fetchLease(db))
            }
            var lease = current
            lease.expiresAt = now.addingTimeInterval(ttl.seconds)
            try db.execute(
                sql: "UPDATE lease SET expires_at = ? WHERE id = 1", arguments: [lease.expiresAt.storedValue])
            return lease
        }
        fence.withLock { $0 = LeaseFence(holder: holder, epoch: lease.epoch) }
        return lease
    }

    /// Gives up `holder`'s lease so that another controller can start at once. Does nothing when
    /// `holder` does not hold it. The epoch stays counted: the next holder gets a higher one.
    public func releaseLease(holder: String) throws {
        try writeUnfenced("release the lease") { db in
            try db.execute(sql: "DELETE FROM lease WHERE id = 1 AND holder = ?", arguments: [holder])
        }
        fence.withLock { current in
            if current?.holder == holder { current = nil }
        }
        logger.info("released the lease", metadata: ["lease.holder": "\(holder)"])
    }

    /// The lease as stored, live or expired; nil when nobody holds one.
    public func currentLease() throws -> Lease? {
        try read("read the lease") { db in try Self.fetchLease(db) }
    }

    private static func nextEpoch(_ db: Database) throws -> Int64 {
        try db.execute(sql: "UPDATE lease_epoch SET epoch = epoch + 1 WHERE id = 1")
        return try Int64.fetchOne(db, sql: "SELECT epoch FROM lease_epoch WHERE id = 1") ?? 1
    }

    private static func storeLease(_ lease: Lease, _ db: Database) throws {
        try db.execute(
            sql: "INSERT OR REPLACE INTO lease (id, holder, acquired_at, expires_at, epoch) VALUES (1, ?, ?, ?, ?)",
            arguments: [lease.holder, lease.acquiredAt.storedValue, lease.expiresAt.storedValue, lease.epoch])
    }
}
