import Controller
import Foundation
import KernelSimulator
import Logging
import MeshwardCore
import MeshwardTestKit
import Reconciler

/// A known simulated fleet in a fresh state directory: alpha, beta and gamma, flows alpha->beta
/// and beta->gamma (4 channels), applied once an hour before the test's loop starts. Then alpha
/// is re-imaged (its kernel lost every SA and policy), sends 3 plaintext packets that beta's
/// required inbound policy drops (`XfrmInTmplMismatch`), and gamma stops answering.
struct TestFleet {
    let directory: URL
    let spec: URL
    /// Moves only when told; a sleep past its time waits until the test cancels the loop, so
    /// the loop runs one cycle and then parks.
    let clock = ManualClock(sleeps: .wait)
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static let specText = """
        version: 1
        cluster: lab
        nodes:
          - name: alpha
            addresses: [198.18.0.1]
          - name: beta
            addresses: [198.18.0.2]
          - name: gamma
            addresses: [198.18.0.3]
        flows:
          - name: alpha-beta
            from: { name: alpha }
            to: { name: beta }
          - name: beta-gamma
            from: { name: beta }
            to: { name: gamma }

        """

    init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-telemetry-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        spec = directory.appendingPathComponent("fleet.yaml")
        try Self.specText.write(to: spec, atomically: true, encoding: .utf8)
        let setup = MeshwardController(
            stateDirectory: directory.appendingPathComponent("state").path, logger: Self.logger, clock: clock)
        let intent = try MeshwardController.loadSpec([spec.path]).intent
        let applied = try await setup.apply(intent, source: spec.path, waitForDrain: true)
        guard applied.outcome == .converged, let beta = IPAddress("198.18.0.2") else {
            throw SetupFailure(description: "the fleet did not converge: \(applied.outcome)")
        }

        clock.advance(by: 3600)
        let fleet = try SimulatedFleet.load(from: setup.simulatedFleetURL)
        fleet.wipe(node: "alpha")
        for _ in 0..<3 {
            _ = fleet.send(from: "alpha", to: beta)
        }
        fleet.setReachable("gamma", false)
        try fleet.save(to: setup.simulatedFleetURL)
    }

    struct SetupFailure: Error, CustomStringConvertible {
        let description: String
    }

    var stateDirectory: String { directory.appendingPathComponent("state").path }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}
