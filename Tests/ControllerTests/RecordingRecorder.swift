import Synchronization

@testable import Controller
@testable import Reconciler
@testable import ReconcilerTestSupport

/// Records what a loop and its keeper report, waking the test's waiters on each.
final class RecordingRecorder: ReconcileRecorder {
    private struct Records {
        var passes = 0
        var cycles: [CycleOutcome] = []
        var leases: [LeaseState] = []
    }

    private let records = Mutex(Records())
    private let events: LoopEvents

    init(events: LoopEvents) {
        self.events = events
    }

    var passes: Int { records.withLock { $0.passes } }
    var cycles: [CycleOutcome] { records.withLock { $0.cycles } }
    var leases: [LeaseState] { records.withLock { $0.leases } }

    func record(pass: PassMeasurement) {
        records.withLock { $0.passes += 1 }
        events.changed()
    }

    func record(cycle: CycleOutcome) {
        records.withLock { $0.cycles.append(cycle) }
        events.changed()
    }

    func record(lease: LeaseState) {
        records.withLock { $0.leases.append(lease) }
        events.changed()
    }
}
