import Prometheus

extension AgentMetrics {
    /// A factory writing into `registry`, with every metric's help text (`help`). The agent has
    /// no histograms.
    public static func prometheusFactory(registry: PrometheusCollectorRegistry) -> DocumentedMetricsFactory {
        DocumentedMetricsFactory(registry: registry, help: help)
    }
}
