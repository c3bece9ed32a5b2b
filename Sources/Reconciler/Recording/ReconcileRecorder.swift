import Foundation

/// Where the passes report what they did, for metrics. The planning core never sees it: only
/// `FleetReconciler.converge` calls it, with values already computed (`PassMeasurement`).
///
/// A conformer must return quickly and never throw: it only records.
public protocol PassRecorder: Sendable {
    /// One pass ended.
    func record(pass: PassMeasurement)
    /// False when the recorder keeps nothing, so that a pass is not measured for it: judging
    /// every channel's drift costs a lookup per object, and a plan's rehearsal, which records
    /// nothing, runs several passes over the whole fleet. True unless a conformer says not.
    var measuresPasses: Bool { get }
}

extension PassRecorder {
    public var measuresPasses: Bool { true }
}

/// Records no pass: the default of a reconciler that runs without metrics.
public struct DiscardingPassRecorder: PassRecorder {
    public init() {}
    public func record(pass: PassMeasurement) {}
    public var measuresPasses: Bool { false }
}
