import Foundation
import GRDB

extension StateStore {
    /// Acquires the writer lease for `holder` until `now + ttl`.
    ///
    /// Takes over a lease whose holder let it expire; renews when `holder` already holds it.
    /// Throws `StoreError.leaseHeld` (naming the holder and its expiry) while another holder's
    /// lease is live. From then on this instance's writes are fenced by the lease.
    public func acquireLease(holder: String, ttl: Duration, now: Date) throws {
        let previous = try writeUnfenced("acquire the lease") { db -> Lease? in
            let current = try Self.fetchLease(db)
            if let current, current.holder != holder, current.isLive(at: now) {
                throw StoreError.leaseHeld(holder: current.holder, expires: current.expiresAt)
            }
            let acquiredAt = current?.holder == holder ? current?.acquiredAt ?? now : now
            try db.execute(
                sql: "INSERT OR REPLACE INTO lease (id, holder, acquired_at, expires_at) VALUES (1, ?, ?, ?)",
                arguments: [holder, acquiredAt.storedValue, now.addingTimeInterval(ttl.seconds).storedValue])
            return current
        }
        fence.withLock { $0 = holder }
        if let previous, previous.holder != holder {
            logger.notice(
                "took over an expired lease",
                metadata: ["lease.holder": "\(holder)", "lease.previous": "\(previous.holder)"])
        } else if previous == nil {
            logger.info("acquired the lease", metadata: ["lease.holder": "\(holder)"])
        }
    }

    /// Takes the lease from `previous` for `holder` until `now + ttl`, even while `previous`'s
    /// lease is live: for a holder the caller knows is gone (a controller process on this host
    /// that has exited). Throws `StoreError.leaseHeld` when anyone but `previous` or `holder`
    /// holds a live lease by now, so a lease that changed hands meanwhile is never broken.
    public func takeOverLease(from previous: String, holder: String, ttl: Duration, now: Date) throws {
        try writeUnfenced("take over the lease") { db in
            let current = try Self.fetchLease(db)
            if let current, current.holder != previous, current.holder != holder, current.isLive(at: now) {
                throw StoreError.leaseHeld(holder: current.holder, expires: current.expiresAt)
            }
            try db.execute(
                sql: "INSERT OR REPLACE INTO lease (id, holder, acquired_at, expires_at) VALUES (1, ?, ?, ?)",
                arguments: [holder, now.storedValue, now.addingTimeInterval(ttl.seconds).storedValue])
        }
        fence.withLock { $0 = holder }
        logger.notice(
            "took over the lease of a controller that exited",
            metadata: ["lease.holder": "\(holder)", "lease.previous": "\(previous)"])
    }

    /// Extends `holder`'s lease to `now + ttl`. Throws `StoreError.leaseNotHeld` when another
    /// holder took it over or it was released; an expired lease nobody took over is renewed.
    public func renewLease(holder: String, ttl: Duration, now: Date) throws {
        try writeUnfenced("renew the lease") { db in
            let current = try Self.fetchLease(db)
            guard let current, current.holder == holder else {
                throw StoreError.leaseNotHeld(holder: holder, current: current)
            }
            try db.execute(
                sql: "UPDATE lease SET expires_at = ? WHERE id = 1",
                arguments: [now.addingTimeInterval(ttl.seconds).storedValue])
        }
        fence.withLock { $0 = holder }
    }

    /// Gives up `holder`'s lease so that another controller can start at once. Does nothing when
    /// `holder` does not hold it.
    public func releaseLease(holder: String) throws {
        try writeUnfenced("release the lease") { db in
            try db.execute(sql: "DELETE FROM lease WHERE id = 1 AND holder = ?", arguments: [holder])
        }
        fence.withLock { current in
            if current == holder { current = nil }
        }
        logger.info("released the lease", metadata: ["lease.holder": "\(holder)"])
    }

    /// The lease as stored, live or expired; nil when nobody holds one.
    public func currentLease() throws -> Lease? {
        try read("read the lease") { db in try Self.fetchLease(db) }
    }
}
