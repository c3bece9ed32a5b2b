import Foundation
import MeshwardTestSupport
import Testing

/// deploy/grafana/meshward.json queries only metrics the controller or the agent registers.
@Suite("Grafana dashboard")
struct DashboardTests {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy/grafana/meshward.json")

    /// Every string of the dashboard that Grafana sends to Prometheus: `expr`, and the
    /// variables' `query` and `definition`.
    static func queries(in value: Any) -> [String] {
        if let object = value as? [String: Any] {
            return object.flatMap { key, member -> [String] in
                if ["expr", "query", "definition"].contains(key), let text = member as? String { return [text] }
                return queries(in: member)
            }
        }
        if let array = value as? [Any] { return array.flatMap(queries(in:)) }
        return []
    }

    static func metricNames(in query: String) -> Set<String> {
        let pattern = try! NSRegularExpression(pattern: "meshward_[a-z0-9_]+")
        let range = NSRange(query.startIndex..., in: query)
        return Set(
            pattern.matches(in: query, range: range).compactMap { Range($0.range, in: query).map { String(query[$0]) } }
        )
    }

    /// Every name the controller's registry and an agent's expose, once each metric has a value.
    static var registeredNames: Set<String> {
        let controller = MeshwardMetricsTests.scrape([
            MeshwardMetricsTests.measurement(
                drops: ["beta": ["XfrmInNoStates": 1]], agentCertificateExpiries: ["beta": 1_900_000_000])
        ])
        return controller.queryableNames.union(AgentMetricsTests.scrape().queryableNames)
    }

    @Test("every metric name the dashboard queries is one the controller's or the agent's registry exposes")
    func namesExist() throws {
        let dashboard = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.file))
        let used = Self.queries(in: dashboard).reduce(into: Set<String>()) { $0.formUnion(Self.metricNames(in: $1)) }
        #expect(used.count >= 10, "too few metric names found to make the check meaningful: \(used.sorted())")
        #expect(used.contains { $0.hasPrefix("meshward_agent_") }, "the agent's metrics are not on the dashboard")
        let registered = Self.registeredNames
        for name in used.sorted() where !registered.contains(name) {
            Issue.record("the dashboard queries \(name), which neither the controller nor the agent registers")
        }
    }

    @Test("the check finds a name the controller does not register, so it can fail")
    func checkCanFail() {
        let names = Self.metricNames(in: #"sum(rate(meshward_made_up_total[5m])) / meshward_channels"#)
        #expect(names == ["meshward_made_up_total", "meshward_channels"])
        let registered = Self.registeredNames
        #expect(!registered.contains("meshward_made_up_total") && registered.contains("meshward_channels"))
        #expect(registered.contains("meshward_agent_ready"))
    }

    @Test("the on-call panels are there: channels by step, oldest key, drops by node, unreachable nodes, pass duration")
    func panels() throws {
        let dashboard = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: Self.file)) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let byTitle = Dictionary(
            panels.compactMap { panel in (panel["title"] as? String).map { ($0, Self.queries(in: panel)) } },
            uniquingKeysWith: { $0 + $1 })
        for (title, metric) in [
            ("Channels by step", "meshward_channels"), ("Oldest active key", "meshward_oldest_key_age_seconds"),
            ("XFRM drops by node", "meshward_xfrm_drops_total"),
            ("Unreachable and blocked nodes", "meshward_nodes_unreachable"),
            ("Pass duration", "meshward_pass_duration_seconds_bucket"),
        ] {
            let queries = try #require(byTitle[title], "no panel \(title)")
            #expect(queries.contains { Self.metricNames(in: $0).contains(metric) }, "\(title) does not query \(metric)")
        }
    }
}
