import Foundation
import Reconciler

/// Where the controller reports what it did, for metrics: every pass (`PassRecorder`), how
/// each cycle of the loop ended and where the lease stands, with values already computed
/// (`PassMeasurement`, `CycleOutcome`, `LeaseState`).
///
/// A conformer must return quickly and never throw: it only records.
public protocol ReconcileRecorder: PassRecorder {
    /// One cycle of the loop ended (a run of passes, or a failure before or during one).
    func record(cycle: CycleOutcome)
    /// The controller learned where the lease stands: it took or renewed it, or another holds it.
    func record(lease: LeaseState)
    /// Where the watch of the fleet stands, after each cycle.
    func record(watch: WatchSummary)
}

extension ReconcileRecorder {
    public func record(watch: WatchSummary) {}
}

/// Records nothing: the default for every command but `reconcile --metrics-address`.
public struct DiscardingRecorder: ReconcileRecorder {
    public init() {}
    public func record(pass: PassMeasurement) {}
    public func record(cycle: CycleOutcome) {}
    public func record(lease: LeaseState) {}
    public var measuresPasses: Bool { false }
}
