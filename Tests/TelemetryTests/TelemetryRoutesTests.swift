import Controller
import Foundation
import NIOHTTP1
import Reconciler
import Store
import Telemetry
import Testing

/// What /healthz and /readyz answer as the loop's cycles end.
@Suite("Health and readiness")
struct TelemetryRoutesTests {
    @Test(
        "readiness follows the last cycle: not before the first, ready when it led and its pass succeeded or it is a standby, not after a failure",
        arguments: [
            ([], false), ([CycleOutcome.converged], true), ([.waitingForDrain], true), ([.blocked], true),
            ([.standby], true), ([.failed], false), ([.converged, .failed], false), ([.failed, .converged], true),
        ] as [([CycleOutcome], Bool)])
    func readiness(cycles: [CycleOutcome], ready: Bool) {
        let telemetry = ControllerTelemetry()
        for cycle in cycles { telemetry.recorder.record(cycle: cycle) }
        let response = telemetry.routes.respond(method: .GET, uri: "/readyz")
        #expect(response.status == (ready ? .ok : .serviceUnavailable))
        #expect(response.body.hasPrefix(ready ? "ready: " : "not ready: "))
        #expect(telemetry.routes.respond(method: .GET, uri: "/healthz").status == .ok)
    }

    @Test(
        "any error of a cycle that ran makes it a failure, a lease held elsewhere too: a standby runs no cycle, and the loop reports it as one directly"
    )
    func cycleOutcomeOfErrors() {
        let held = StoreError.leaseHeld(holder: "other pid 1", expires: Date())
        #expect(CycleOutcome(.failure(held)) == .failed)
        #expect(CycleOutcome(.failure(CancellationError())) == .failed)
    }

    @Test("unknown paths are 404, other methods 405, and a query string does not change the route")
    func routing() {
        let routes = ControllerTelemetry().routes
        #expect(routes.respond(method: .GET, uri: "/").status == .notFound)
        #expect(routes.respond(method: .POST, uri: "/metrics").status == .methodNotAllowed)
        #expect(routes.respond(method: .GET, uri: "/metrics?x=1").status == .ok)
    }
}
