import Foundation
import Telemetry
import Testing

/// `reconcile --metrics-address` and `--log-format` as an operator meets them.
@Suite("Telemetry options")
struct TelemetryOptionsTests {
    @Test(
        "a malformed --metrics-address is a usage error naming the value, exit 1, nothing run",
        arguments: ["9464", "localhost:99999", "::1:9464"])
    func badAddress(address: String) async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let result = try await cli.run(
            "reconcile", MeshwardCLI.example("minimal.yaml"), "--once", "--metrics-address", address)
        #expect(result.status == 1)
        #expect(result.error.contains("'\(address)' is not HOST:PORT"), "\(result.error)")
        #expect(!FileManager.default.fileExists(atPath: cli.stateDirectory.path), "a cycle ran")
    }

    @Test("a --metrics-address whose port is in use stops reconcile before its first cycle, exit 1, with the reason")
    func portInUse() async throws {
        let holder = try await TelemetryServer.bind(
            ListenAddress(host: "127.0.0.1", port: 0), routes: ControllerTelemetry().routes)
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let result = try await cli.run(
            "reconcile", MeshwardCLI.example("minimal.yaml"), "--once", "--metrics-address", "\(holder.address)")
        await holder.close()
        #expect(result.status == 1)
        #expect(
            result.error.contains("cannot serve metrics on \(holder.address): the port is already in use"),
            "\(result.error)")
        #expect(!FileManager.default.fileExists(atPath: cli.stateDirectory.path), "a cycle ran")
    }

    @Test("reconcile --once with --metrics-address on a free port converges and exits 0")
    func onceWithMetrics() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let result = try await cli.run(
            "reconcile", MeshwardCLI.example("minimal.yaml"), "--once", "--metrics-address", "127.0.0.1:0",
            "--log-format", "json", "--verbose")
        #expect(result.status == 0, "\(result.error)")
        let lines = result.error.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] is String && object?["message"] is String, "\(line)")
        }
        #expect(lines.contains { $0.contains(#""message":"serving metrics""#) })
    }

    @Test("--version prints the release and exits 0")
    func version() async throws {
        let result = try await MeshwardCLI.capture(MeshwardCLI.binary, ["--version"])
        #expect(result.status == 0)
        #expect(result.output.range(of: #"^[0-9]+\.[0-9]+\.[0-9]+\n$"#, options: .regularExpression) != nil)
    }
}
