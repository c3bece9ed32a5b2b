import Foundation
import Logging
import MeshwardTestKit
import Store
import Testing

@testable import Controller
@testable import ReconcilerTestSupport

/// The controller's fence (`LeaseWriteFence`) renews its lease in the Store before kernel writes:
/// a controller whose lease another took over sends nothing.
@Suite("The controller's lease fences its kernel writes")
struct LeaseWriteFenceTests {
    @Test("a controller whose lease another took over changes no kernel")
    func deposedControllerSendsNothing() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let mine = try StateStore.open(directory: directory.path, logger: logger)
        let theirs = try StateStore.open(directory: directory.path, logger: logger)
        let clock = ManualClock()
        try mine.acquireLease(holder: "mine", ttl: .seconds(60), now: clock.now())
        let fixture = PlannerFixture(
            store: mine,
            fence: LeaseWriteFence(renew: { try mine.renewLease(holder: "mine", ttl: .seconds(60), now: $0) }))
        let intent = try FleetSpec.pair().compile()
        fixture.provision(intent)
        // The lease lapses (a long pause) and another controller takes it.
        try theirs.acquireLease(holder: "theirs", ttl: .seconds(60), now: clock.now().addingTimeInterval(61))
        let before = fixture.fleet.state
        await #expect(throws: (any Error).self) { try await fixture.pass(intent) }
        #expect(fixture.fleet.state == before)
    }
}
