import Foundation

/// The right to change kernels, confirmed right before a pass sends anything.
///
/// The controller's conformer renews the Store's lease (its epoch unchanged) and answers with
/// the lease's expiry; a lease taken over by another controller throws. A pass sends a node its
/// batch only while at least `FleetReconciler.kernelCallBound` of the confirmed time is left,
/// so no batch can still be in flight when the lease expires.
public protocol WriteFence: Sendable {
    /// Confirms that this controller may write kernels now and returns until when; throws when
    /// it may not (the lease was lost).
    func confirm(at now: Date) async throws -> Date
}

/// No fence: for tests, benchmarks and the plan rehearsal, which write no real kernel.
public struct UnfencedWrites: WriteFence {
    public init() {}

    public func confirm(at now: Date) throws -> Date { .distantFuture }
}
