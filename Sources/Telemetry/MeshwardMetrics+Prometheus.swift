import Prometheus

extension MeshwardMetrics {
    /// A factory writing into `registry`, with every metric's help text (`help`) and the
    /// histograms' buckets (`passDurationBuckets`, `keyAgeBuckets`).
    public static func prometheusFactory(registry: PrometheusCollectorRegistry) -> DocumentedMetricsFactory {
        DocumentedMetricsFactory(
            registry: registry, help: help, durationHistogramBuckets: [Name.passDuration: passDurationBuckets],
            valueHistogramBuckets: [Name.keyAge: keyAgeBuckets])
    }
}
