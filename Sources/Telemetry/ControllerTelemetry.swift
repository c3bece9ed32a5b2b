import Controller
import Prometheus
import Reconciler

/// The controller's metrics and health, wired: a Prometheus registry that `MeshwardMetrics`
/// writes into, the readiness that `ControllerHealth` keeps, and the routes that serve both.
public struct ControllerTelemetry: Sendable {
    /// The registry `/metrics` serves.
    public let registry: PrometheusCollectorRegistry
    public let metrics: MeshwardMetrics
    public let health: ControllerHealth

    /// A fresh registry (not the process-wide default, so tests can run several side by side).
    public init() {
        registry = PrometheusCollectorRegistry()
        metrics = MeshwardMetrics(factory: MeshwardMetrics.prometheusFactory(registry: registry))
        health = ControllerHealth()
    }

    /// What the reconcile loop reports to: the metrics, then the health.
    public var recorder: any ReconcileRecorder { RecorderGroup([metrics, health]) }

    /// `/metrics`, `/healthz`, `/readyz`.
    public var routes: TelemetryRoutes {
        let registry = self.registry
        let health = self.health
        return TelemetryRoutes(metrics: { registry.emitToString() }, readiness: { health.readiness })
    }
}
