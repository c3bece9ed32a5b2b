/// Records nothing: the default for every command but `reconcile --metrics-address`.
public struct DiscardingRecorder: ReconcileRecorder {
    public init() {}
    public func record(pass: PassMeasurement) {}
    public func record(cycle: CycleOutcome) {}
    public func record(lease: LeaseState) {}
}
