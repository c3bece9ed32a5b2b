import Agent
import Foundation
import MeshwardTestSupport
import Prometheus
import Telemetry
import Testing

/// What `AgentMetrics` makes of what an agent reports.
@Suite("Agent metrics")
struct AgentMetricsTests {
    /// A registry after one of every kind of report.
    static func scrape() -> Exposition {
        let registry = PrometheusCollectorRegistry()
        let metrics = AgentMetrics(factory: AgentMetrics.prometheusFactory(registry: registry))
        metrics.record(request: .apply, result: .staleEpoch)
        metrics.record(highestEpoch: 4)
        metrics.record(statistics: ["XfrmInNoStates": 1])
        metrics.record(certificateExpiry: Date(timeIntervalSince1970: 1_900_000_000), node: "a")
        metrics.record(ready: true)
        return Exposition(registry.emitToString())
    }

    @Test("a refused epoch counts as a stale-epoch apply and as a refused epoch; the rest report as given")
    func values() {
        let scrape = Self.scrape()
        #expect(scrape.value("meshward_agent_requests_total", ["kind": "apply", "result": "stale-epoch"]) == 1)
        #expect(scrape.value("meshward_agent_requests_total", ["kind": "apply", "result": "ok"]) == 0)
        #expect(scrape.value("meshward_agent_epochs_refused_total") == 1)
        #expect(scrape.value("meshward_agent_highest_epoch") == 4)
        #expect(scrape.value("meshward_agent_xfrm_drops_total", ["counter": "XfrmInNoStates"]) == 1)
        #expect(scrape.value("meshward_agent_certificate_expiry_timestamp_seconds", ["node": "a"]) == 1_900_000_000)
        #expect(scrape.value("meshward_agent_ready") == 1)
    }

    @Test("the agent's drop counters follow its kernel's values, and start over when one goes down (a reboot)")
    func dropsFollowTheKernel() {
        let registry = PrometheusCollectorRegistry()
        let metrics = AgentMetrics(factory: AgentMetrics.prometheusFactory(registry: registry))
        let sequence: [UInt64] = [0, 3, 3, 8, 2, 5]
        var seen: [Double?] = []
        for value in sequence {
            metrics.record(statistics: ["XfrmInTmplMismatch": value])
            seen.append(
                Exposition(registry.emitToString()).value(
                    "meshward_agent_xfrm_drops_total", ["counter": "XfrmInTmplMismatch"]))
        }
        #expect(seen == [nil, 3, 3, 8, 2, 5], "a counter that never moved is exported, or one does not follow")
    }
}
