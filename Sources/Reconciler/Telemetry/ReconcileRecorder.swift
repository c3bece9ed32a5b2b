import Foundation

/// Where the reconciler reports what it did, for metrics. The planning core never sees it:
/// only the loop (`FleetReconciler.converge`, `MeshwardController.apply`, `ReconcileService`)
/// calls it, with values already computed (`PassMeasurement`, `CycleOutcome`, `LeaseState`).
///
/// A conformer must return quickly and never throw: it only records.
public protocol ReconcileRecorder: Sendable {
    /// One pass ended.
    func record(pass: PassMeasurement)
    /// One cycle of the loop ended (a run of passes, or a failure before or during one).
    func record(cycle: CycleOutcome)
    /// The controller learned where the lease stands: it took or renewed it, or another holds it.
    func record(lease: LeaseState)
}

/// Records nothing: the default for every command but `reconcile --metrics-address`.
public struct DiscardingRecorder: ReconcileRecorder {
    public init() {}
    public func record(pass: PassMeasurement) {}
    public func record(cycle: CycleOutcome) {}
    public func record(lease: LeaseState) {}
}

/// Where the Store's lease stands for this controller.
public enum LeaseState: Sendable, Hashable {
    /// This controller holds the lease at `epoch`.
    case leading(epoch: Int64)
    /// Another controller holds it; this one waits (a standby).
    case standby(holder: String)
}
