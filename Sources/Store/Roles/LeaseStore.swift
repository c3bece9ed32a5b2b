import Foundation

/// The role that lets one controller at a time write: a lease with a holder, an expiry and an
/// epoch that grows every time the lease changes hands.
///
/// A store instance that acquired (or took over, or renewed) the lease fences every later write
/// of every role by that holder and epoch: the write's transaction checks them and throws
/// `StoreError.leaseNotHeld` once another holder took the lease. Times come from the caller
/// here; a store on a server may use its own clock for expiry instead, as long as the epoch
/// never goes down.
public protocol LeaseStore: Sendable {
    /// Acquires the lease for `holder` until `now + ttl`: takes over an expired lease (next
    /// epoch), renews when `holder` already holds it (same epoch). Throws `StoreError.leaseHeld`
    /// while another holder's lease is live.
    @discardableResult func acquireLease(holder: String, ttl: Duration, now: Date) async throws -> Lease

    /// Takes the lease from `previous` even while it is live (a holder the caller knows is
    /// gone), with the next epoch. Throws `StoreError.leaseHeld` when anyone but `previous` or
    /// `holder` holds a live lease by now.
    @discardableResult func takeOverLease(
        from previous: String, holder: String, ttl: Duration, now: Date
    ) async throws -> Lease

    /// Extends `holder`'s lease to `now + ttl`, its epoch unchanged. Throws
    /// `StoreError.leaseNotHeld` when another holder took it, it was released, or its epoch
    /// moved on since this instance held it.
    @discardableResult func renewLease(holder: String, ttl: Duration, now: Date) async throws -> Lease

    /// Gives up `holder`'s lease so that another controller can start at once; the epoch stays
    /// counted. Does nothing when `holder` does not hold it.
    func releaseLease(holder: String) async throws

    /// The lease as stored, live or expired; nil when nobody holds one.
    func currentLease() async throws -> Lease?
}
