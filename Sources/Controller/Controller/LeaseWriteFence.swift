import Foundation
import Reconciler
import Store

/// The fence of a controller that holds the Store's lease: confirming renews the lease (same
/// holder, same epoch) and answers with its new expiry; a lease another controller took over
/// throws `StoreError.leaseNotHeld`, so the pass sends nothing.
struct LeaseWriteFence: WriteFence {
    let renew: @Sendable (Date) async throws -> Lease

    func confirm(at now: Date) async throws -> Date { try await renew(now).expiresAt }
}
