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
            let epoch = try await storedEpoch(connection)
            let lease = try LeaseTransition.acquire(
                current: current, holder: holder, ttl: ttl, now: Date(storedValue: clock), nextEpoch: { epoch + 1 })
            try await storeLease(lease, connection)
            return (current, lease)
        }
        fence.withLock { $0 = LeaseFence(holder: holder, epoch: lease.epoch) }
        LeaseTransition.logAcquired(lease, previous: previous, logger: logger)
        return lease
    }

    /// Takes the lease from `previous` even while it is live, with the next epoch; refuses when
    /// anyone but `previous` or `holder` holds a live lease by the server's clock.
    @discardableResult
    public func takeOverLease(from previous: String, holder: String, ttl: Duration, now: Date) async throws -> Lease {
        let lease = try await transaction("take over the lease", .unfenced) { connection in
            let (current, clock) = try await fetchLease(connection, now: now, lock: "FOR UPDATE")
            let epoch = try await storedEpoch(connection)
            let lease = try LeaseTransition.takeOver(
                current: current, from: previous, holder: holder, ttl: ttl, now: Date(storedValue: clock),
                nextEpoch: { epoch + 1 })
            try await storeLease(lease, connection)
            return lease
        }
        fence.withLock { $0 = LeaseFence(holder: holder, epoch: lease.epoch) }
        LeaseTransition.logTakenOver(lease, from: previous, logger: logger)
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
