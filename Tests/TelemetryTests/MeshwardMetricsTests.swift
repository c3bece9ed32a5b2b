import Controller
import Foundation
import MeshwardCore
import MeshwardTestSupport
import Prometheus
import Reconciler
import Telemetry
import Testing

/// What `MeshwardMetrics` makes of the measurements it is given.
@Suite("Meshward metrics")
struct MeshwardMetricsTests {
    static func measurement(
        drops: [String: [String: UInt64]] = [:], agentCertificateExpiries: [String: Double] = [:]
    ) -> PassMeasurement {
        var steps = Dictionary(uniqueKeysWithValues: ChannelStep.allCases.map { ($0, 0) })
        steps[.established] = 3
        steps[.rekeying] = 1
        return PassMeasurement(
            durationSeconds: 0.2, channelsByStep: steps, generationsIssued: [.age: 1],
            operations: [
                .init(node: "alpha", kind: "add-sa", applied: true, count: 2),
                .init(node: "beta", kind: "update-policy", applied: false, count: 1),
            ],
            unreachableNodes: 1, blockedNodes: 2, driftedChannels: 1, dropCounters: drops,
            activeKeyAges: [10, 7200], secondsUntilNextRekey: -5, agentCertificateExpiries: agentCertificateExpiries)
    }

    /// A registry after one pass, one cycle and a lease of every kind of metric.
    static func scrape(_ passes: [PassMeasurement]) -> Exposition {
        let telemetry = ControllerTelemetry()
        for pass in passes { telemetry.recorder.record(pass: pass) }
        telemetry.recorder.record(cycle: .converged)
        telemetry.recorder.record(lease: .leading(epoch: 7))
        return Exposition(telemetry.registry.emitToString())
    }

    @Test("a pass's counts land on their metrics with node, kind, step and reason labels")
    func passValues() {
        let scrape = Self.scrape([Self.measurement()])
        #expect(scrape.value("meshward_channels", ["step": "established"]) == 3)
        #expect(scrape.value("meshward_channels", ["step": "new"]) == 0)
        #expect(scrape.value("meshward_generations_issued_total", ["reason": "age"]) == 1)
        #expect(scrape.value("meshward_operations_applied_total", ["node": "alpha", "kind": "add-sa"]) == 2)
        #expect(scrape.value("meshward_operations_refused_total", ["node": "beta", "kind": "update-policy"]) == 1)
        #expect(scrape.value("meshward_nodes_unreachable") == 1)
        #expect(scrape.value("meshward_nodes_blocked") == 2)
        #expect(scrape.value("meshward_channels_drifted") == 1)
        #expect(scrape.value("meshward_oldest_key_age_seconds") == 7200)
        #expect(scrape.value("meshward_next_rekey_seconds") == -5)
        #expect(scrape.value("meshward_key_age_seconds_count") == 2)
        #expect(scrape.value("meshward_pass_duration_seconds_count") == 1)
        #expect(scrape.value("meshward_pass_duration_seconds_bucket", ["le": "0.25"]) == 1)
        #expect(scrape.value("meshward_pass_duration_seconds_bucket", ["le": "0.1"]) == 0)
        #expect(scrape.value("meshward_cycles_total", ["outcome": "converged"]) == 1)
        #expect(scrape.value("meshward_cycles_total", ["outcome": "failed"]) == 0)
        #expect(scrape.value("meshward_lease_leading") == 1)
        #expect(scrape.value("meshward_lease_epoch") == 7)
    }

    @Test(
        "each agent's certificate expiry is a gauge per node, in seconds since 1970, kept while the agent does not answer"
    )
    func agentCertificateExpiry() {
        let telemetry = ControllerTelemetry()
        #expect(
            Exposition(telemetry.registry.emitToString()).all("meshward_agent_certificate_expiry_timestamp_seconds")
                .isEmpty)
        telemetry.recorder.record(
            pass: Self.measurement(agentCertificateExpiries: ["alpha": 1_900_000_000, "beta": 1_900_086_400]))
        telemetry.recorder.record(pass: Self.measurement(agentCertificateExpiries: ["alpha": 1_907_776_000]))
        let scrape = Exposition(telemetry.registry.emitToString())
        #expect(scrape.value("meshward_agent_certificate_expiry_timestamp_seconds", ["node": "alpha"]) == 1_907_776_000)
        #expect(scrape.value("meshward_agent_certificate_expiry_timestamp_seconds", ["node": "beta"]) == 1_900_086_400)
        #expect(scrape.types["meshward_agent_certificate_expiry_timestamp_seconds"] == "gauge")
    }

    @Test("drop counters follow the kernel's values across passes, and start over when a node's counter goes down")
    func dropsFollowTheKernel() {
        let sequence: [UInt64] = [3, 3, 5, 2, 4]
        let telemetry = ControllerTelemetry()
        var seen: [Double] = []
        for value in sequence {
            telemetry.recorder.record(
                pass: Self.measurement(
                    drops: ["beta": ["XfrmInNoStates": value, "XfrmInTmplMismatch": 1, "XfrmOutNoStates": 0]]))
            let scrape = Exposition(telemetry.registry.emitToString())
            seen.append(scrape.value("meshward_xfrm_drops_total", ["node": "beta", "counter": "XfrmInNoStates"]) ?? -1)
            #expect(scrape.value("meshward_xfrm_drops_total", ["node": "beta", "counter": "XfrmInTmplMismatch"]) == 1)
            #expect(scrape.all("meshward_xfrm_drops_total").count == 2, "a counter that never moved is exported")
        }
        #expect(seen == sequence.map { Double($0) })
    }

    @Test("a standby reports that it does not lead, and keeps the last epoch it held")
    func standbyLease() {
        let telemetry = ControllerTelemetry()
        telemetry.recorder.record(lease: .leading(epoch: 3))
        telemetry.recorder.record(lease: .standby(holder: "other pid 1"))
        let scrape = Exposition(telemetry.registry.emitToString())
        #expect(scrape.value("meshward_lease_leading") == 0)
        #expect(scrape.value("meshward_lease_epoch") == 3)
        #expect(!telemetry.registry.emitToString().contains("other pid 1"))
    }

    @Test("the watch's summary sets its gauges and adds to its counters only what moved since the last one")
    func watchSummary() {
        let telemetry = ControllerTelemetry()
        var summary = WatchSummary()
        summary.live = 3
        summary.stale = 1
        summary.polled = 2
        summary.changes = 10
        summary.snapshots = 4
        summary.resumes = 1
        summary.cacheAgeSeconds = 7.5
        telemetry.recorder.record(watch: summary)
        summary.changes = 15
        summary.live = 4
        summary.stale = 0
        telemetry.recorder.record(watch: summary)
        let scrape = Exposition(telemetry.registry.emitToString())
        #expect(scrape.value("meshward_watch_nodes", ["state": "live"]) == 4)
        #expect(scrape.value("meshward_watch_nodes", ["state": "stale"]) == 0)
        #expect(scrape.value("meshward_watch_nodes", ["state": "polled"]) == 2)
        #expect(scrape.value("meshward_watch_changes_total") == 15)
        #expect(scrape.value("meshward_watch_snapshots_total") == 4)
        #expect(scrape.value("meshward_watch_stream_resumes_total") == 1)
        #expect(scrape.value("meshward_watch_digest_mismatches_total") == 0)
        #expect(scrape.value("meshward_watch_cache_age_seconds") == 7.5)
    }

    @Test(
        "every metric name follows Prometheus conventions: meshward_ prefix, counters end in _total, no unit but seconds"
    )
    func namingConventions() {
        let scrape = Self.scrape([Self.measurement(drops: ["beta": ["XfrmInNoStates": 1]])])
        #expect(scrape.types.count == 22)
        for (name, type) in scrape.types {
            #expect(name.hasPrefix("meshward_"), "\(name)")
            #expect((type == "counter") == name.hasSuffix("_total"), "\(name) is a \(type)")
            #expect(!name.contains("milliseconds") && !name.contains("minutes") && !name.contains("hours"), "\(name)")
        }
    }
}
