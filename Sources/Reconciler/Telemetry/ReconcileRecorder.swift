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
