import Foundation
import PostgresNIO
import Store

extension PostgresStore: LeaseStore {
    /// Acquires the lease for `holder` until the server's `now()` + `ttl` (the caller's `now`
    /// is not used, except by the behavioural suite's `LeaseClock.caller`). Locks the lease row,
    /// so two controllers acquiring at once are ordered by the database.
    @discardableResult
    public func acquireLease(holder: String, ttl: Duration, now: Date) async throws -> Lease {
        let (previous, lease) = try await transaction("acquire the lease", .unfenced) { connection in
            let (current, clock) = try await fetchLease(connection, now: now, lock: "FOR UPDATE")
            if let current, current.holder != holder, current.expiresAt.storedValue > clock {
                throw StoreError.leaseHeld(holder: current.holder, expires: current.expiresAt)
            }
            let keeps = current?.holder == holder
            let epoch = try await storedEpoch(connection)
            let lease = Lease(
                holder: holder,
                acquiredAt: keeps ? current?.acquiredAt ?? Date(storedValue: clock) : Date(storedValue: clock),
                expiresAt: Date(storedValue: clock + ttl.seconds), epoch: keeps ? epoch : epoch + 1)
            try await storeLease(lease, connection)
            return (current, lease)
        }
        fence.withLock { $0 = LeaseFence(holder: holder, epoch: lease.epoch) }
        if let previous, previous.holder != holder {
            logger.notice(
                "took over an expired lease",
                metadata: [
                    "lease.holder": "\(holder)", "lease.previous": "\(previous.holder)",
                    "lease.epoch": "\(lease.epoch)",
                ])
        } else if previous == nil {
            logger.info("acquired the lease", metadata: ["lease.holder": "\(holder)", "lease.epoch": "\(lease.epoch)"])
        }
        return lease
    }

    /// Takes the lease from `previous` even while it is live, with the next epoch; refuses when
    /// anyone but `previous` or `holder` holds a live lease by the server's clock.
    @discardableResult
    public func takeOverLease(from previous: String, holder: String, ttl: Duration, now: Date) async throws -> Lease {
        let lease = try await transaction("take over the lease", .unfenced) { connection in
            let (current, clock) = try await fetchLease(connection, now: now, lock: "FOR UPDATE")
            if let current, current.holder != previous, current.holder != holder, current.expiresAt.storedValue > clock
            {
                throw StoreError.leaseHeld(holder: current.holder, expires: current.expiresAt)
            }
            let lease = Lease(
                holder: holder, acquiredAt: Date(storedValue: clock), expiresAt: Date(storedValue: clock + ttl.seconds),
                epoch: try await storedEpoch(connection) + 1)
            try await storeLease(lease, connection)
            return lease
        }
        fence.withLock { $0 = LeaseFence(holder: holder, epoch: lease.epoch) }
        logger.notice(
            "took over the lease of a controller that exited",
            metadata: ["lease.holder": "\(holder)", "lease.previous": "\(previous)", "lease.epoch": "\(lease.epoch)"])
        return lease
    }

    /// Extends `holder`'s lease to the server's `now()` + `ttl`, its epoch unchanged; refuses
    /// when another holder took it, it was released, or its epoch moved on since this instance
    /// held it.
    @discardableResult
    public func renewLease(holder: String, ttl: Duration, now: Date) async throws -> Lease {
        let fenced = fence.withLock { $0 }
        let lease = try await transaction("renew the lease", .unfenced) { connection in
            let (current, clock) = try await fetchLease(connection, now: now, lock: "FOR UPDATE")
            guard let current, current.holder == holder,
                fenced.map({ $0.holder != holder || $0.epoch == current.epoch }) ?? true
            else {
                throw StoreError.leaseNotHeld(holder: holder, current: current)
            }
            var lease = current
            lease.expiresAt = Date(storedValue: clock + ttl.seconds)
            try await storeLease(lease, connection)
            return lease
        }
        fence.withLock { $0 = LeaseFence(holder: holder, epoch: lease.epoch) }
        return lease
    }

    /// Gives up `holder`'s lease; the epoch stays counted. Does nothing when `holder` does not hold it.
    public func releaseLease(holder: String) async throws {
        try await transaction("release the lease", .unfenced) { connection in
            try await connection.query(
                "UPDATE lease SET holder = NULL, acquired_at = NULL, expires_at = NULL WHERE id = 1 AND holder = \(holder)",
                logger: logger)
        }
        fence.withLock { current in
            if current?.holder == holder { current = nil }
        }
        logger.info("released the lease", metadata: ["lease.holder": "\(holder)"])
    }

    /// The lease as stored, live or expired; nil when nobody holds one.
    public func currentLease() async throws -> Lease? {
        try await transaction("read the lease", .snapshot) { connection in
            try await fetchLease(connection, now: nil, lock: "").0
        }
    }

    private func storeLease(_ lease: Lease, _ connection: PostgresConnection) async throws {
        try await connection.query(
            """
            UPDATE lease SET holder = \(lease.holder), acquired_at = \(lease.acquiredAt.storedValue),
                expires_at = \(lease.expiresAt.storedValue), epoch = \(lease.epoch)
            WHERE id = 1
            """, logger: logger)
    }
}
