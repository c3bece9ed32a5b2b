import Agent
import AgentTestSupport
import AgentWire
import Foundation
import Identity
import Kernel
import MeshwardCore
import MeshwardTestSupport
import Synchronization
import Telemetry
import Testing

/// An agent's `/metrics`, `/healthz` and `/readyz`, scraped over HTTP on loopback as Prometheus
/// would, against what the test did to it.
@Suite("the agent's metrics and health")
struct AgentTelemetryTests {
    @Test(
        "a scrape of a running agent shows what was done to it: requests by kind and result, the refused epoch, the highest epoch, its drops, its certificate's expiry, and ready once marked"
    )
    func scrapeShowsWhatWasDone() async throws {
        let statistics = ScriptedStatistics(["XfrmInNoStates": 2, "XfrmOutNoStates": 0])
        let telemetry = AgentTelemetry()
        let issued = Date()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: StatisticsConnector(statistics: statistics), recorders: ["a": telemetry.recorder])
        defer { Task { await agents.stop() } }
        let server = try #require(agents.servers["a"])
        let http = try await TelemetryServer.bind(
            ListenAddress(host: "127.0.0.1", port: 0), routes: telemetry.routes(for: server))
        defer { Task { await http.close() } }
        let port = http.address.port

        let before = Exposition(try HTTPProbe.get(port: port, path: "/metrics").body)
        #expect(before.value("meshward_agent_ready") == 0)
        #expect(before.value("meshward_agent_requests_total", ["kind": "observe", "result": "ok"]) == 0)
        #expect(before.all("meshward_agent_requests_total").count == 42, "every kind (6) and result (7) from the start")
        let notReady = try HTTPProbe.get(port: port, path: "/readyz")
        #expect(notReady.status == 503)
        #expect(notReady.body.contains("has not marked every channel established"), "\(notReady.body)")
        #expect(try HTTPProbe.get(port: port, path: "/healthz").status == 200)

        let current = try await agents.kernel("a", epoch: { 5 })
        _ = try await current.observe()
        statistics.set(["XfrmInNoStates": 7, "XfrmOutNoStates": 1])
        _ = try await current.observe()
        let sa = AgentFixtures.association(spi: 0x1000, key: try AgentFixtures.key())
        #expect(try await current.apply([.addSA(sa)]).map(\.outcome) == [.applied])
        let deposed = try await agents.kernel("a", epoch: { 3 })
        let refused = await AgentFixtures.errorText { _ = try await deposed.apply([.deleteSA(sa.identifier)]) }
        #expect(refused.contains("lease epoch 3"), "\(refused)")
        let marker = try #require(current as? AgentKernel)
        #expect(try await marker.markReady(bootID: "another-boot", deadline: .now + .seconds(20)) == false)
        #expect(try await marker.markReady(bootID: server.bootID, deadline: .now + .seconds(20)))
        let newer = try AgentKernel(
            node: "a", host: "127.0.0.1", port: UInt16(try #require(agents.ports["a"])), reqid: .meshwardDefault,
            credentials: agents.controller, cluster: agents.cluster, epoch: { 5 }, executor: agents.executor,
            protocolVersions: (WireCodec.protocolVersion + 1)...(WireCodec.protocolVersion + 1),
            logger: InProcessAgents.quietLogger)
        _ = await AgentFixtures.errorText { _ = try await newer.observe() }

        let scrape = Exposition(try HTTPProbe.get(port: port, path: "/metrics").body)
        let expected: [(String, String, Double)] = [
            ("observe", "ok", 2), ("observe", "version-mismatch", 1), ("apply", "ok", 1),
            ("apply", "stale-epoch", 1), ("mark-ready", "other-boot", 1), ("mark-ready", "ok", 1),
        ]
        for (kind, result, count) in expected {
            #expect(
                scrape.value("meshward_agent_requests_total", ["kind": kind, "result": result]) == count,
                "\(kind) \(result)")
        }
        let total = scrape.all("meshward_agent_requests_total").reduce(0) { $0 + $1.value }
        #expect(total == 7, "requests counted that were not made")
        #expect(scrape.value("meshward_agent_epochs_refused_total") == 1)
        #expect(scrape.value("meshward_agent_highest_epoch") == 5)
        #expect(scrape.value("meshward_agent_xfrm_drops_total", ["counter": "XfrmInNoStates"]) == 7)
        #expect(scrape.value("meshward_agent_xfrm_drops_total", ["counter": "XfrmOutNoStates"]) == 1)
        #expect(scrape.all("meshward_agent_xfrm_drops_total").count == 2)
        let expiry = try #require(
            scrape.value("meshward_agent_certificate_expiry_timestamp_seconds", ["node": "a"]))
        #expect(
            expiry >= issued.timeIntervalSince1970 + 86_400 - 1 && expiry <= Date().timeIntervalSince1970 + 86_400 + 1,
            "the certificate was issued for 24 h at \(issued), the metric says it expires at \(expiry)")
        #expect(scrape.value("meshward_agent_ready") == 1)
        #expect(scrape.types["meshward_agent_requests_total"] == "counter")
        #expect(scrape.types["meshward_agent_ready"] == "gauge")
        for sample in scrape.samples {
            #expect(
                Set(sample.labels.keys).isSubset(of: ["kind", "result", "counter", "node", "reason", "start"]),
                "\(sample)")
        }
        let ready = try HTTPProbe.get(port: port, path: "/readyz")
        #expect(ready.status == 200)
        #expect(ready.body.contains("ready: enrolled") && ready.body.contains(server.bootID), "\(ready.body)")
    }

    @Test(
        "a scrape counts the TLS handshakes the agent refused by reason: a TLS 1.2 client, an X25519-only client, a node's certificate, bytes that are not TLS"
    )
    func scrapeCountsRefusedHandshakes() async throws {
        let telemetry = AgentTelemetry()
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: StatisticsConnector(statistics: ScriptedStatistics([:])),
            recorders: ["a": telemetry.recorder])
        defer { Task { await agents.stop() } }
        let server = try #require(agents.servers["a"])
        let http = try await TelemetryServer.bind(
            ListenAddress(host: "127.0.0.1", port: 0), routes: telemetry.routes(for: server))
        defer { Task { await http.close() } }
        let metrics = "meshward_agent_handshakes_refused_total"
        let before = Exposition(try HTTPProbe.get(port: http.address.port, path: "/metrics").body)
        for reason in HandshakeRefusalReason.allCases {
            #expect(before.value(metrics, ["reason": reason.rawValue]) == 0, "\(reason) is present from the start")
        }

        let port = try #require(agents.ports["a"])
        var tls12 = try ControlChannelTLSTests.controllerConfiguration(agents)
        tls12.minimumTLSVersion = .tlsv12
        tls12.maximumTLSVersion = .tlsv12
        tls12.curves = nil
        #expect(await RawTLSClient.handshake(port: port, configuration: tls12) != nil)
        var classical = try ControlChannelTLSTests.controllerConfiguration(agents)
        classical.curves = [.x25519]
        #expect(await RawTLSClient.handshake(port: port, configuration: classical) != nil)
        let nodeCertificate = try AgentCredentials(
            ca: agents.ca,
            issued: agents.ca.issue(for: .node(cluster: "test", name: "b"), now: Date(), validity: .seconds(3600)))
        let impostor = try ControlChannelTLS.configuration(
            role: .client, certificateChain: [nodeCertificate.certificatePEM],
            privateKeyPEM: nodeCertificate.privateKeyPEM, trustRootsPEM: [nodeCertificate.caCertificatePEM])
        #expect(await RawTLSClient.handshakeUntilServerCloses(port: port, configuration: impostor))
        try await RawTCPClient.sendAndWaitForClose(port: port, bytes: Array("GET / HTTP/1.1\r\n\r\n".utf8))

        let scrape = Exposition(try HTTPProbe.get(port: http.address.port, path: "/metrics").body)
        for reason in HandshakeRefusalReason.allCases {
            #expect(scrape.value(metrics, ["reason": reason.rawValue]) == 1, "\(reason)")
        }
        #expect(scrape.types[metrics] == "counter")
    }

    @Test("an agent whose certificate has expired is not ready, and says so, even when marked ready for this boot")
    func expiredCertificateIsNotReady() async throws {
        let directory = AgentDirectory(path: try AgentFixtures.temporaryDirectory())
        try directory.writeReadyBoot("boot-1")
        let ca = try ClusterCA.create(cluster: "test", now: Date())
        let credentials = try AgentCredentials(
            ca: ca, issued: ca.issue(for: .node(cluster: "test", name: "a"), now: Date(), validity: .seconds(3600)))
        let clock = Mutex(Date())
        let server = try AgentServer(
            credentials: credentials, host: "127.0.0.1", port: 0, connector: StatisticsConnector(), endpoint: .sim,
            directory: directory, bootID: "boot-1", now: { clock.withLock { $0 } },
            logger: InProcessAgents.quietLogger)
        #expect(server.readiness.ready, "the ready mark of this boot in the directory counts after a restart")
        clock.withLock { $0 = $0.addingTimeInterval(7200) }
        let (ready, reason) = server.readiness
        #expect(!ready)
        #expect(reason.contains("not enrolled: the agent certificate expired at"), "\(reason)")

        let otherBoot = try AgentServer(
            credentials: credentials, host: "127.0.0.1", port: 0, connector: StatisticsConnector(), endpoint: .sim,
            directory: directory, bootID: "boot-2", logger: InProcessAgents.quietLogger)
        #expect(!otherBoot.readiness.ready, "a ready mark of an earlier boot counts")
        #expect(otherBoot.readiness.reason.contains("boot-2"), "\(otherBoot.readiness.reason)")
    }

    @Test("the controller's observation of a node behind an agent carries when the agent's certificate expires")
    func observationCarriesCertificateExpiry() async throws {
        // A certificate's times are whole seconds, rounded: hence the second of slack either way.
        let issued = Date()
        let agents = try await InProcessAgents.start(nodes: ["a"], connector: StatisticsConnector())
        defer { Task { await agents.stop() } }
        let observation = try await agents.kernel("a").observe()
        let expiry = try #require(observation.agentCertificateExpiry)
        #expect(
            expiry.timeIntervalSince(issued) >= 86_400 - 1 && expiry.timeIntervalSinceNow <= 86_400 + 1,
            "issued for 24 h at \(issued.timeIntervalSince1970), observed expiry \(expiry.timeIntervalSince1970), now \(Date().timeIntervalSince1970)"
        )
    }
}

/// XFRM statistics a test sets, for the kernels of `StatisticsConnector`.
final class ScriptedStatistics: Sendable {
    private let values: Mutex<[String: UInt64]>

    init(_ values: [String: UInt64] = [:]) { self.values = Mutex(values) }

    func set(_ new: [String: UInt64]) { values.withLock { $0 = new } }

    var current: [String: UInt64] { values.withLock { $0 } }
}

/// Kernels that hold nothing, apply every operation, and report the statistics the test set.
struct StatisticsConnector: KernelConnector {
    var statistics = ScriptedStatistics()

    var schemes: Set<NodeEndpoint.Scheme> { [.sim] }

    func connect(node: String, endpoint: NodeEndpoint, reqid: Reqid) async throws -> any NodeKernel {
        StatisticsKernel(node: node, reqid: reqid, statistics: statistics)
    }
}

struct StatisticsKernel: NodeKernel {
    let node: String
    let reqid: Reqid
    let statistics: ScriptedStatistics

    func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
        NodeObservation(statistics: statistics.current)
    }

    func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult] {
        operations.map { OperationResult(operation: $0, outcome: .applied) }
    }
}
