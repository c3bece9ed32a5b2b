import Controller
import Foundation
import MeshwardCore
import MeshwardTestSupport
import Reconciler
import Synchronization
import Telemetry
import Testing

/// The reconcile loop of a known fleet, scraped over HTTP on loopback as Prometheus would.
@Suite("Metrics endpoint")
struct MetricsEndpointTests {
    /// Runs the loop until its first cycle ends, then hands the bound server's port to `body`.
    static func withRunningLoop(
        _ fleet: TestFleet, telemetry: ControllerTelemetry, _ body: (Int) async throws -> Void
    ) async throws {
        let server = try await TelemetryServer.bind(
            ListenAddress(host: "127.0.0.1", port: 0), routes: telemetry.routes)
        let cycles = AsyncStream<Result<ApplyDocument, any Error>>.makeStream()
        let service = ReconcileService(
            controller: MeshwardController(
                stateDirectory: fleet.stateDirectory, logger: TestFleet.logger, clock: fleet.clock,
                recorder: telemetry.recorder),
            specPaths: [fleet.spec.path], interval: .seconds(30), once: false, reload: ReloadTrigger(),
            clock: fleet.clock, logger: TestFleet.logger, recorder: telemetry.recorder,
            onCycle: { cycles.continuation.yield($0) })
        let loop = Task { try await service.run() }
        defer { loop.cancel() }
        var iterator = cycles.stream.makeAsyncIterator()
        let first = await iterator.next()
        if case .failure(let error) = first { Issue.record("the first cycle failed: \(error)") }
        try await body(server.address.port)
        await server.close()
    }

    @Test(
        "a scrape of the running loop shows the known fleet: steps, lost-state generations, drops, unreachable and blocked nodes, key age, next rekey"
    )
    func scrapeShowsTheFleet() async throws {
        let fleet = try await TestFleet()
        defer { fleet.remove() }
        let telemetry = ControllerTelemetry()
        try await Self.withRunningLoop(fleet, telemetry: telemetry) { port in
            let response = try HTTPProbe.get(port: port, path: "/metrics")
            #expect(response.status == 200)
            #expect(response.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
            let scrape = Exposition(response.body)

            // gamma does not answer: its two channels with beta are blocked; beta answered but waits on it.
            #expect(scrape.value("meshward_nodes_unreachable") == 1)
            #expect(scrape.value("meshward_nodes_blocked") == 1)
            #expect(scrape.value("meshward_channels", ["step": "blocked"]) == 2)
            let steps = scrape.all("meshward_channels")
            #expect(steps.count == ChannelStep.allCases.count)
            #expect(steps.reduce(0) { $0 + $1.value } == 4)

            // alpha lost its kernel state: both of its channels get a new generation, for that reason.
            #expect(scrape.value("meshward_generations_issued_total", ["reason": "lost-state"]) == 2)
            #expect(scrape.all("meshward_generations_issued_total").count == 1)
            #expect((scrape.value("meshward_operations_applied_total", ["node": "alpha", "kind": "add-sa"]) ?? 0) == 2)
            #expect(scrape.all("meshward_operations_applied_total").allSatisfy { $0.labels["node"] != "gamma" })
            #expect(scrape.all("meshward_operations_refused_total").isEmpty)

            // The first pass saw both of alpha's channels drift; the last pass saw none.
            #expect(scrape.value("meshward_channels_drifted") == 0)
            #expect(scrape.value("meshward_xfrm_drops_total", ["node": "beta", "counter": "XfrmInTmplMismatch"]) == 3)
            #expect(scrape.all("meshward_xfrm_drops_total").allSatisfy { $0.value > 0 })

            // beta<->gamma keep the keys applied an hour ago: the oldest key, and the next rekey at 24 h.
            #expect(scrape.value("meshward_oldest_key_age_seconds") == 3600)
            #expect(scrape.value("meshward_next_rekey_seconds") == 86_400.0 - 3600)
            #expect(scrape.value("meshward_key_age_seconds_count") == 4)
            #expect(scrape.value("meshward_key_age_seconds_bucket", ["le": "3600.0"]) == 4)
            #expect(scrape.value("meshward_key_age_seconds_bucket", ["le": "900.0"]) == 2)

            let passes = try #require(scrape.value("meshward_passes_total"))
            #expect(passes >= 2)
            #expect(scrape.value("meshward_pass_duration_seconds_count") == passes)
            #expect(scrape.value("meshward_cycles_total", ["outcome": "blocked"]) == 1)
            #expect(scrape.value("meshward_lease_leading") == 1)
            #expect((scrape.value("meshward_lease_epoch") ?? 0) >= 1)
            // The fleet is simulated: no node is behind an agent, so no certificate expiry.
            #expect(scrape.all("meshward_agent_certificate_expiry_timestamp_seconds").isEmpty)
            for sample in scrape.samples {
                #expect(sample.labels["spi"] == nil && sample.labels["channel"] == nil, "\(sample)")
                #expect(!sample.labels.values.contains { $0.hasPrefix("0x") || $0.contains("->") }, "\(sample)")
            }
        }
    }

    @Test("/healthz answers 200 and /readyz 200 once a cycle ended blocked only by an unreachable node")
    func healthAndReadinessOverHTTP() async throws {
        let fleet = try await TestFleet()
        defer { fleet.remove() }
        let telemetry = ControllerTelemetry()
        try await Self.withRunningLoop(fleet, telemetry: telemetry) { port in
            #expect(try HTTPProbe.get(port: port, path: "/healthz").status == 200)
            let ready = try HTTPProbe.get(port: port, path: "/readyz")
            #expect(ready.status == 200)
            #expect(ready.body.contains("blocked"), "\(ready.body)")
            #expect(try HTTPProbe.get(port: port, path: "/nothing").status == 404)
        }
    }

    @Test("a port already in use is refused with the address and the reason")
    func portInUse() async throws {
        let first = try await TelemetryServer.bind(
            ListenAddress(host: "127.0.0.1", port: 0), routes: ControllerTelemetry().routes)
        defer { Task { await first.close() } }
        do {
            let second = try await TelemetryServer.bind(first.address, routes: ControllerTelemetry().routes)
            await second.close()
            Issue.record("a second server listened on \(first.address)")
        } catch let error as TelemetryError {
            #expect("\(error)".contains("cannot serve metrics on \(first.address): the port is already in use"))
        }
    }
}
