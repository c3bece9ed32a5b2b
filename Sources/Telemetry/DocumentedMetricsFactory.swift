import Metrics
import Prometheus

/// A swift-metrics factory that registers every metric family in a Prometheus registry with its
/// `# HELP` text, and every histogram with its own buckets.
///
/// swift-prometheus's `PrometheusMetricsFactory` registers every family with an empty help text,
/// which `promtool check metrics` reports. This one looks each metric's name up in the texts it
/// was given and stops the process (a precondition) on a name that has none, and on a histogram
/// without buckets: a metric cannot be added without saying what it measures. The texts are
/// docs/metrics.md's first sentence for each metric (`MeshwardMetrics.help`, `AgentMetrics.help`).
///
/// A swift-metrics `Recorder` that aggregates and a `Timer` become histograms; a `Recorder` that
/// does not and a `Meter` become gauges; both kinds of `Counter` become counters.
public struct DocumentedMetricsFactory: MetricsFactory {
    /// Where the families are registered (what `/metrics` serves).
    public let registry: PrometheusCollectorRegistry
    private let help: [String: String]
    private let durationHistogramBuckets: [String: [Duration]]
    private let valueHistogramBuckets: [String: [Double]]

    /// - Parameters:
    ///   - registry: where the families are registered.
    ///   - help: each metric's name -> its help text (one sentence, not empty).
    ///   - durationHistogramBuckets: each `Timer`'s name -> its buckets.
    ///   - valueHistogramBuckets: each aggregating `Recorder`'s name -> its buckets.
    public init(
        registry: PrometheusCollectorRegistry, help: [String: String],
        durationHistogramBuckets: [String: [Duration]] = [:], valueHistogramBuckets: [String: [Double]] = [:]
    ) {
        self.registry = registry
        self.help = help
        self.durationHistogramBuckets = durationHistogramBuckets
        self.valueHistogramBuckets = valueHistogramBuckets
    }

    /// The name and help text of the family `label`; stops the process when it has no help text.
    private func descriptor(_ label: String) -> MetricNameDescriptor {
        guard let text = help[label], !text.isEmpty else {
            preconditionFailure(
                "metric \(label) has no help text: add it to its recorder's `help` next to its `Name`, "
                    + "and its row to docs/metrics.md")
        }
        return MetricNameDescriptor(metricName: label, unitName: "", helpText: text)
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeFloatingPointCounter(
        label: String, dimensions: [(String, String)]
    ) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        guard let buckets = valueHistogramBuckets[label] else {
            preconditionFailure("histogram \(label) has no buckets: give them to its factory")
        }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let buckets = durationHistogramBuckets[label] else {
            preconditionFailure("histogram \(label) has no buckets: give them to its factory")
        }
        return registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets)
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge {
            registry.unregisterGauge(gauge)
        } else if let histogram = handler as? ValueHistogram {
            registry.unregisterValueHistogram(histogram)
        }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
