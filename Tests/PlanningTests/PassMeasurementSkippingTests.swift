import Foundation
import MeshwardTestKit
import Reconciler
import Synchronization
import Testing

@testable import ReconcilerTestSupport

/// A pass is measured only for a recorder that keeps measurements (`PassRecorder.measuresPasses`).
@Suite("Pass measurements only for recorders that keep them")
struct PassMeasurementSkippingTests {
    final class CountingRecorder: PassRecorder {
        let measuresPasses: Bool
        let recorded = Mutex(0)
        init(measuresPasses: Bool) { self.measuresPasses = measuresPasses }
        func record(pass: PassMeasurement) { recorded.withLock { $0 += 1 } }
    }

    @Test("a recorder that keeps measurements gets one per pass; one that keeps none is never handed one")
    func measuredOnlyWhenKept() async throws {
        for measures in [true, false] {
            let fixture = PlannerFixture()
            let intent = try FleetSpec.pair().compile()
            fixture.fleet.withState { state in
                for node in intent.nodes { state.addNode(node.name, addresses: node.addresses) }
            }
            let recorder = CountingRecorder(measuresPasses: measures)
            let reconciler = FleetReconciler(
                store: ScratchGenerationStore(channels: [:]),
                kernels: SimulatedFleetKernels(fleet: fixture.fleet, reqid: fixture.reqid), reqid: fixture.reqid,
                clock: fixture.clock, logger: .init(label: "test"), recorder: recorder)
            let report = try await reconciler.converge(intent: intent, waitForDrain: true)
            #expect(report.passes.count > 1)
            #expect(recorder.recorded.withLock { $0 } == (measures ? report.passes.count : 0))
        }
    }
}
