import Controller
import Reconciler

/// Hands everything recorded to each of its recorders, in order (metrics and health).
public struct RecorderGroup: ReconcileRecorder {
    private let recorders: [any ReconcileRecorder]

    public init(_ recorders: [any ReconcileRecorder]) {
        self.recorders = recorders
    }

    public func record(pass: PassMeasurement) {
        for recorder in recorders where recorder.measuresPasses { recorder.record(pass: pass) }
    }

    public var measuresPasses: Bool { recorders.contains { $0.measuresPasses } }

    public func record(cycle: CycleOutcome) {
        for recorder in recorders { recorder.record(cycle: cycle) }
    }

    public func record(lease: LeaseState) {
        for recorder in recorders { recorder.record(lease: lease) }
    }

    public func record(watch: WatchSummary) {
        for recorder in recorders { recorder.record(watch: watch) }
    }
}
