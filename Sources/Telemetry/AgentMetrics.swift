import Agent
import Foundation
import Metrics

/// An agent's metrics (`meshward agent run --metrics-address`), reported through swift-metrics
/// into the factory it is given. Conforms to `AgentRecorder`, so the agent reports plain values
/// and never imports a metrics library.
///
/// Labels are bounded: `kind` (6), `result` (7), `start` (2), `reason` (4), `counter` (the kernel's XFRM counters, at most
/// 28) and `node` (this agent's one node). docs/metrics.md lists every metric.
public final class AgentMetrics: AgentRecorder {
    /// Every metric's name, as Prometheus shows it.
    public enum Name {
        public static let requests = "meshward_agent_requests_total"
        public static let epochsRefused = "meshward_agent_epochs_refused_total"
        public static let highestEpoch = "meshward_agent_highest_epoch"
        public static let certificateExpiry = MeshwardMetrics.Name.agentCertificateExpiry
        public static let xfrmDrops = "meshward_agent_xfrm_drops_total"
        public static let ready = "meshward_agent_ready"
        public static let handshakesRefused = "meshward_agent_handshakes_refused_total"
        public static let connectionsAccepted = "meshward_agent_connections_accepted_total"
        public static let watchStreams = "meshward_agent_watch_streams"
        public static let watchEvents = "meshward_agent_watch_events_sent_total"
        public static let watchStarts = "meshward_agent_watch_starts_total"
        public static let watchOverflows = "meshward_agent_watch_overflows_total"
    }

    /// Every metric's `# HELP` text: the sentence that starts its row in docs/metrics.md (without
    /// the Markdown). `DocumentedMetricsFactory` refuses a metric that has none.
    public static let help: [String: String] = [
        Name.requests: "requests answered since the process started, by kind and result",
        Name.epochsRefused: "applies refused because their lease epoch was lower than one already accepted",
        Name.highestEpoch:
            "the highest controller lease epoch accepted, as persisted in the agent directory (0 before the first apply)",
        Name.certificateExpiry: "when the agent's own certificate expires, in seconds since 1970-01-01 UTC",
        Name.xfrmDrops: "the host's /proc/net/xfrm_stat counters as each observe read them",
        Name.ready: "1 when /readyz answers 200, 0 otherwise; read at each scrape",
        Name.handshakesRefused:
            "TLS handshakes refused, by reason: a client without TLS 1.3 or X25519MLKEM768, a refused certificate, not TLS",
        Name.connectionsAccepted:
            "control connections accepted since the process started, counted before their handshake",
        Name.watchStreams: "watch streams open now, one per controller that watches this agent's kernel",
        Name.watchEvents: "watch events sent since the process started: snapshot items, changes and progress",
        Name.watchStarts:
            "watch streams begun since the process started, by how: a snapshot, or a resume from the ring",
        Name.watchOverflows:
            "watch streams ended because their controller did not read them fast enough (it resumes from its last seq)",
    ]

    private let factory: any MetricsFactory
    private let drops = DropCounterFeed()

    /// - Parameter factory: where the metrics go (`AgentMetrics.prometheusFactory(registry:)`,
    ///   which gives every metric its help text).
    public init(factory: any MetricsFactory) {
        self.factory = factory
        // Present from the first scrape, so dashboards and alerts see zeros rather than gaps.
        for kind in AgentRequestKind.allCases {
            for result in AgentRequestResult.allCases {
                Counter(
                    label: Name.requests, dimensions: [("kind", kind.rawValue), ("result", result.rawValue)],
                    factory: factory
                )
                .increment(by: 0)
            }
        }
        Counter(label: Name.epochsRefused, factory: factory).increment(by: 0)
        Counter(label: Name.connectionsAccepted, factory: factory).increment(by: 0)
        for reason in HandshakeRefusalReason.allCases {
            Counter(label: Name.handshakesRefused, dimensions: [("reason", reason.rawValue)], factory: factory)
                .increment(by: 0)
        }
        Gauge(label: Name.highestEpoch, factory: factory).record(0)
        Gauge(label: Name.ready, factory: factory).record(0)
        Gauge(label: Name.watchStreams, factory: factory).record(0)
        Counter(label: Name.watchEvents, factory: factory).increment(by: 0)
        Counter(label: Name.watchOverflows, factory: factory).increment(by: 0)
        for start in WatchStart.allCases {
            Counter(label: Name.watchStarts, dimensions: [("start", start.rawValue)], factory: factory).increment(by: 0)
        }
    }

    /// Sets `meshward_agent_watch_streams`.
    public func record(watchStreamsOpen: Int) {
        Gauge(label: Name.watchStreams, factory: factory).record(Double(watchStreamsOpen))
    }

    /// Adds one to `meshward_agent_watch_starts_total{start}`.
    public func record(watchStart: WatchStart) {
        Counter(label: Name.watchStarts, dimensions: [("start", watchStart.rawValue)], factory: factory).increment()
    }

    /// Adds to `meshward_agent_watch_events_sent_total`.
    public func record(watchEventsSent: Int) {
        Counter(label: Name.watchEvents, factory: factory).increment(by: Int64(watchEventsSent))
    }

    /// Adds one to `meshward_agent_watch_overflows_total`.
    public func recordWatchOverflow() {
        Counter(label: Name.watchOverflows, factory: factory).increment()
    }

    public func record(request: AgentRequestKind, result: AgentRequestResult) {
        Counter(
            label: Name.requests, dimensions: [("kind", request.rawValue), ("result", result.rawValue)],
            factory: factory
        )
        .increment()
        if result == .staleEpoch { Counter(label: Name.epochsRefused, factory: factory).increment() }
    }

    /// Adds one to `meshward_agent_handshakes_refused_total{reason}`.
    public func record(handshakeRefused reason: HandshakeRefusalReason) {
        Counter(label: Name.handshakesRefused, dimensions: [("reason", reason.rawValue)], factory: factory).increment()
    }

    /// Adds one to `meshward_agent_connections_accepted_total`.
    public func recordAcceptedConnection() {
        Counter(label: Name.connectionsAccepted, factory: factory).increment()
    }

    public func record(highestEpoch: UInt64) {
        Gauge(label: Name.highestEpoch, factory: factory).record(Double(highestEpoch))
    }

    /// Adds to `meshward_agent_xfrm_drops_total{counter}` what each counter moved since the
    /// last observe (`DropCounterFeed`).
    public func record(statistics: [String: UInt64]) {
        drops.feed(["": statistics]) { _, name in
            Counter(label: Name.xfrmDrops, dimensions: [("counter", name)], factory: factory)
        }
    }

    /// Sets `meshward_agent_certificate_expiry_timestamp_seconds{node}`: when the agent's own
    /// certificate expires, in seconds since 1970-01-01 UTC.
    public func record(certificateExpiry: Date, node: String) {
        Gauge(label: Name.certificateExpiry, dimensions: [("node", node)], factory: factory)
            .record(certificateExpiry.timeIntervalSince1970)
    }

    /// Sets `meshward_agent_ready` to 1 when ready (`/readyz` answers 200), 0 otherwise.
    public func record(ready: Bool) {
        Gauge(label: Name.ready, factory: factory).record(ready ? 1 : 0)
    }
}
