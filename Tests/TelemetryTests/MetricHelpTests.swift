import Foundation
import MeshwardTestSupport
import Prometheus
import Telemetry
import Testing

/// Every metric family the controller and the agent expose says what it measures (`# HELP`),
/// in the words docs/metrics.md uses for it.
@Suite("Metric help texts")
struct MetricHelpTests {
    /// The controller's registry (as `ControllerTelemetry` wires it) after one of every report.
    static func controllerScrape() -> Exposition {
        MeshwardMetricsTests.scrape([
            MeshwardMetricsTests.measurement(
                drops: ["beta": ["XfrmInNoStates": 1]], agentCertificateExpiries: ["beta": 1_900_000_000])
        ])
    }

    /// The agent's registry (as `AgentTelemetry` wires it) after one of every report.
    static func agentScrape() -> Exposition {
        let telemetry = AgentTelemetry()
        telemetry.metrics.record(request: .apply, result: .staleEpoch)
        telemetry.metrics.record(highestEpoch: 4)
        telemetry.metrics.record(statistics: ["XfrmInNoStates": 1])
        telemetry.metrics.record(certificateExpiry: Date(timeIntervalSince1970: 1_900_000_000), node: "a")
        telemetry.metrics.record(ready: true)
        return Exposition(telemetry.registry.emitToString())
    }

    /// The `# TYPE` families of `scrape` without a non-empty `# HELP` line.
    static func familiesWithoutHelp(_ scrape: Exposition) -> [String] {
        scrape.types.keys.filter { (scrape.help[$0] ?? "").isEmpty }.sorted()
    }

    @Test(
        "after one of every report, every family of the controller's registry has a non-empty # HELP line, and the families are exactly MeshwardMetrics.help's names"
    )
    func controllerFamiliesHaveHelp() {
        let scrape = Self.controllerScrape()
        #expect(scrape.types.count == MeshwardMetrics.help.count)
        #expect(Self.familiesWithoutHelp(scrape) == [])
        #expect(Set(scrape.types.keys) == Set(MeshwardMetrics.help.keys))
    }

    @Test(
        "after one of every report, every family of the agent's registry has a non-empty # HELP line, and the families are exactly AgentMetrics.help's names"
    )
    func agentFamiliesHaveHelp() {
        let scrape = Self.agentScrape()
        #expect(scrape.types.count == AgentMetrics.help.count)
        #expect(Self.familiesWithoutHelp(scrape) == [])
        #expect(Set(scrape.types.keys) == Set(AgentMetrics.help.keys))
    }

    @Test("/metrics of a running reconcile loop, scraped over HTTP, has a non-empty # HELP line for every # TYPE")
    func runningLoopServesHelp() async throws {
        let fleet = try await TestFleet()
        defer { fleet.remove() }
        try await MetricsEndpointTests.withRunningLoop(fleet, telemetry: ControllerTelemetry()) { port in
            let scrape = Exposition(try HTTPProbe.get(port: port, path: "/metrics").body)
            #expect(scrape.types.count >= 10, "too few families to make the check meaningful: \(scrape.types.keys)")
            #expect(Self.familiesWithoutHelp(scrape) == [])
        }
    }

    /// A metric and the help text a person reads for it.
    struct NamedHelp: Sendable, CustomTestStringConvertible {
        let name: String
        let help: String
        let agent: Bool
        var testDescription: String { (agent ? "agent " : "controller ") + name }
    }

    @Test(
        "a named metric's # HELP line is its sentence from docs/metrics.md",
        arguments: [
            NamedHelp(name: "meshward_passes_total", help: "passes run", agent: false),
            NamedHelp(
                name: "meshward_nodes_unreachable", help: "nodes that did not answer the latest pass", agent: false),
            NamedHelp(
                name: "meshward_pass_duration_seconds", help: "one pass, from observation to the last kernel's answer",
                agent: false),
            NamedHelp(
                name: "meshward_xfrm_drops_total", help: "each node's /proc/net/xfrm_stat counters as observed",
                agent: false),
            NamedHelp(
                name: "meshward_agent_certificate_expiry_timestamp_seconds",
                help: "for each node behind an agent, when the certificate its agent presented at the controller's "
                    + "last handshake expires, in seconds since 1970-01-01 UTC",
                agent: false),
            NamedHelp(
                name: "meshward_agent_certificate_expiry_timestamp_seconds",
                help: "when the agent's own certificate expires, in seconds since 1970-01-01 UTC", agent: true),
            NamedHelp(
                name: "meshward_agent_ready", help: "1 when /readyz answers 200, 0 otherwise; read at each scrape",
                agent: true),
        ])
    func namedHelp(_ expected: NamedHelp) {
        let scrape = expected.agent ? Self.agentScrape() : Self.controllerScrape()
        #expect(scrape.help[expected.name] == expected.help)
    }

    /// docs/metrics.md.
    static let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/metrics.md")

    /// The rows of the metrics table under the heading `section` in docs/metrics.md: each metric's
    /// name and its "what" column, without the Markdown backticks.
    static func documentedRows(under section: String) throws -> [String: String] {
        let text = try String(contentsOf: document, encoding: .utf8)
        var rows: [String: String] = [:]
        var inSection = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("## ") {
                inSection = line == "## \(section)"
                continue
            }
            guard inSection, line.hasPrefix("| `meshward_") else { continue }
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 4, let what = cells.last else { continue }
            rows[cells[0].replacingOccurrences(of: "`", with: "")] = what.replacingOccurrences(of: "`", with: "")
        }
        return rows
    }

    @Test(
        "each metric's help text is the start of its row in docs/metrics.md, and the tables list exactly the metrics that have one",
        arguments: [("The metrics", MeshwardMetrics.help), ("The agent's metrics", AgentMetrics.help)])
    func helpMatchesTheDocument(section: String, help: [String: String]) throws {
        let rows = try Self.documentedRows(under: section)
        #expect(Set(rows.keys) == Set(help.keys), "section \(section)")
        for (name, text) in help.sorted(by: { $0.key < $1.key }) {
            let row = rows[name] ?? ""
            let rest = row.dropFirst(text.count)
            #expect(
                row.hasPrefix(text) && (rest.isEmpty || [":", ";", ".", ",", " "].contains(rest.first)),
                "\(name): help \"\(text)\" does not start its row \"\(row)\"")
        }
    }

    @Test("the factory stops the process when a metric without a help text is registered")
    func metricWithoutHelpRefused() async {
        await #expect(processExitsWith: .failure) {
            let factory = DocumentedMetricsFactory(
                registry: PrometheusCollectorRegistry(), help: ["known_total": "known"])
            _ = factory.makeCounter(label: "unknown_total", dimensions: [])
        }
    }
}
