import Prometheus

extension MeshwardMetrics {
    /// A Prometheus factory writing into `registry`, with the histograms' buckets set
    /// (`passDurationBuckets`, `keyAgeBuckets`).
    public static func prometheusFactory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[Name.passDuration] = passDurationBuckets
        factory.valueHistogramBuckets[Name.keyAge] = keyAgeBuckets
        return factory
    }
}
