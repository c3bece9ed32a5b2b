import Foundation

/// Where the passes report what they did, for metrics. The planning core never sees it: only
/// `FleetReconciler.converge` calls it, with values already computed (`PassMeasurement`).
///
/// A conformer must return quickly and never throw: it only records.
public protocol PassRecorder: Sendable {
    /// One pass ended.
    func record(pass: PassMeasurement)
}

/// Records no pass: the default of a reconciler that runs without metrics.
public struct DiscardingPassRecorder: PassRecorder {
    public init() {}
    public func record(pass: PassMeasurement) {}
}
