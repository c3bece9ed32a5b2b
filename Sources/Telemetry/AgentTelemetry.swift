import Agent
import Prometheus

/// An agent's metrics and health, wired: a Prometheus registry that `AgentMetrics` writes into,
/// and the routes that serve it with the agent's readiness.
public struct AgentTelemetry: Sendable {
    /// The registry `/metrics` serves.
    public let registry: PrometheusCollectorRegistry
    public let metrics: AgentMetrics

    /// A fresh registry (not the process-wide default, so tests can run several side by side).
    public init() {
        registry = PrometheusCollectorRegistry()
        metrics = AgentMetrics(factory: AgentMetrics.prometheusFactory(registry: registry))
    }

    /// What the agent reports to (`AgentServer`'s `recorder`).
    public var recorder: any AgentRecorder { metrics }

    /// `/metrics`, `/healthz`, `/readyz` for `server`. Its readiness and its certificate's expiry
    /// are read at each scrape, so `meshward_agent_ready` always agrees with `/readyz`.
    public func routes(for server: AgentServer) -> TelemetryRoutes {
        let registry = self.registry
        let metrics = self.metrics
        metrics.record(certificateExpiry: server.certificateValidity.upperBound, node: server.node)
        return TelemetryRoutes(
            metrics: {
                metrics.record(ready: server.readiness.ready)
                // A renewal moves it.
                metrics.record(certificateExpiry: server.certificateValidity.upperBound, node: server.node)
                return registry.emitToString()
            },
            readiness: { server.readiness })
    }
}
