import Controller
import MeshwardCore
import Metrics
import Reconciler
import Synchronization

/// The controller's metrics, reported through swift-metrics into the factory it is given (the
/// Prometheus registry that `/metrics` serves). Conforms to `ReconcileRecorder`, so the
/// reconciler reports plain values (`PassMeasurement`) and never imports a metrics library.
///
/// Labels are bounded: `node` (one per node of the fleet), `step`, `reason`, `kind`,
/// `outcome`, `counter` (fixed sets). No metric carries a channel or an SPI; docs/metrics.md
/// lists every metric with its cardinality.
public final class MeshwardMetrics: ReconcileRecorder {
    /// Every metric's name, as Prometheus shows it.
    public enum Name {
        public static let channels = "meshward_channels"
        public static let generationsIssued = "meshward_generations_issued_total"
        public static let oldestKeyAge = "meshward_oldest_key_age_seconds"
        public static let keyAge = "meshward_key_age_seconds"
        public static let nextRekey = "meshward_next_rekey_seconds"
        public static let passes = "meshward_passes_total"
        public static let operationsApplied = "meshward_operations_applied_total"
        public static let operationsRefused = "meshward_operations_refused_total"
        public static let passDuration = "meshward_pass_duration_seconds"
        public static let unreachableNodes = "meshward_nodes_unreachable"
        public static let blockedNodes = "meshward_nodes_blocked"
        public static let driftedChannels = "meshward_channels_drifted"
        public static let xfrmDrops = "meshward_xfrm_drops_total"
        public static let cycles = "meshward_cycles_total"
        public static let leaseLeading = "meshward_lease_leading"
        public static let leaseEpoch = "meshward_lease_epoch"
        public static let agentCertificateExpiry = "meshward_agent_certificate_expiry_timestamp_seconds"
        public static let watchNodes = "meshward_watch_nodes"
        public static let watchChanges = "meshward_watch_changes_total"
        public static let watchSnapshots = "meshward_watch_snapshots_total"
        public static let watchDigestMismatches = "meshward_watch_digest_mismatches_total"
        public static let watchResumes = "meshward_watch_stream_resumes_total"
        public static let watchCacheAge = "meshward_watch_cache_age_seconds"
    }

    /// Every metric's `# HELP` text: the sentence that starts its row in docs/metrics.md (without
    /// the Markdown). `DocumentedMetricsFactory` refuses a metric that has none.
    public static let help: [String: String] = [
        Name.channels: "channels in each step after the latest pass",
        Name.generationsIssued: "generations issued, by the reason they were issued",
        Name.oldestKeyAge: "the age of the oldest active key after the latest pass",
        Name.keyAge: "every active key's age, sampled once per cycle",
        Name.nextRekey:
            "seconds until the first rekey by age (rekey.every) falls due; negative when one is overdue",
        Name.passes: "passes run",
        Name.passDuration: "one pass, from observation to the last kernel's answer",
        Name.operationsApplied: "kernel operations applied, by node and kind",
        Name.operationsRefused:
            "kernel operations not applied: refused by the kernel, not attempted, or with an unknown outcome",
        Name.unreachableNodes: "nodes that did not answer the latest pass",
        Name.blockedNodes: "nodes that answered but have a channel waiting on a peer that did not",
        Name.driftedChannels:
            "channels whose two kernels answered and lack or hold differently what the Store says, "
            + "as the latest pass found them (before it repaired anything)",
        Name.xfrmDrops: "each node's /proc/net/xfrm_stat counters as observed",
        Name.cycles: "loop cycles, by outcome",
        Name.leaseLeading:
            "1 when this controller holds the Store's lease (as last renewed or taken), 0 when another does",
        Name.leaseEpoch: "the lease epoch this controller last held (one more each time the lease changes hands)",
        Name.agentCertificateExpiry:
            "for each node behind an agent, when the certificate its agent presented at the controller's last "
            + "handshake expires, in seconds since 1970-01-01 UTC",
        Name.watchNodes:
            "nodes the controller's watch follows, by state: live, stale (silent for three progress intervals), "
            + "polled (no watch)",
        Name.watchChanges: "changes received on the watch streams",
        Name.watchSnapshots: "watched nodes' copies rebuilt from a snapshot",
        Name.watchDigestMismatches: "snapshots forced by a progress digest that differed from the controller's copy",
        Name.watchResumes: "watch streams opened again after they ended",
        Name.watchCacheAge: "the longest any live node's watch stream has been silent, as of the latest cycle",
    ]

    /// Buckets of `meshward_pass_duration_seconds`: a pass of a small fleet takes milliseconds,
    /// one that waits out a node's 30 s deadline takes half a minute.
    public static let passDurationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        .seconds(30), .seconds(60),
    ]

    /// Buckets of `meshward_key_age_seconds`: minutes to days (the default `rekey.every` is 24 h).
    public static let keyAgeBuckets: [Double] = [
        60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600, 2 * 86_400, 7 * 86_400, 30 * 86_400,
    ]

    private let factory: any MetricsFactory
    /// The drop counters last observed per node, to turn the kernel's absolute values into
    /// increments (a value that went down means the node rebooted: the counter starts over).
    private let drops = DropCounterFeed()
    /// The active keys' ages of the last pass, sampled into the histogram when a cycle ends.
    private let lastKeyAges = Mutex<[Double]>([])
    /// The watch's summary last recorded, to turn its totals into increments.
    private let lastWatch = Mutex(WatchSummary())

    /// - Parameter factory: where the metrics go (`MeshwardMetrics.prometheusFactory(registry:)`,
    ///   which gives every metric its help text).
    public init(factory: any MetricsFactory) {
        self.factory = factory
        // Present from the first scrape, so dashboards and alerts see zeros rather than gaps.
        for step in ChannelStep.allCases {
            Gauge(label: Name.channels, dimensions: [("step", step.rawValue)], factory: factory).record(0)
        }
        for name in [Name.unreachableNodes, Name.blockedNodes, Name.driftedChannels, Name.leaseLeading] {
            Gauge(label: name, factory: factory).record(0)
        }
        Counter(label: Name.passes, factory: factory).increment(by: 0)
        _ = Recorder(label: Name.keyAge, aggregate: true, factory: factory)
        _ = CoreMetrics.Timer(label: Name.passDuration, factory: factory)
        for outcome in CycleOutcome.allCases {
            Counter(label: Name.cycles, dimensions: [("outcome", outcome.rawValue)], factory: factory).increment(by: 0)
        }
        for state in ["live", "stale", "polled"] {
            Gauge(label: Name.watchNodes, dimensions: [("state", state)], factory: factory).record(0)
        }
        for name in [Name.watchChanges, Name.watchSnapshots, Name.watchDigestMismatches, Name.watchResumes] {
            Counter(label: name, factory: factory).increment(by: 0)
        }
        Gauge(label: Name.watchCacheAge, factory: factory).record(0)
    }

    public func record(pass: PassMeasurement) {
        Counter(label: Name.passes, factory: factory).increment()
        CoreMetrics.Timer(label: Name.passDuration, factory: factory)
            .recordNanoseconds(Int64((pass.durationSeconds * 1e9).rounded()))
        for (step, count) in pass.channelsByStep {
            Gauge(label: Name.channels, dimensions: [("step", step.rawValue)], factory: factory).record(count)
        }
        for (reason, count) in pass.generationsIssued {
            Counter(label: Name.generationsIssued, dimensions: [("reason", reason.rawValue)], factory: factory)
                .increment(by: count)
        }
        for tally in pass.operations {
            Counter(
                label: tally.applied ? Name.operationsApplied : Name.operationsRefused,
                dimensions: [("node", tally.node), ("kind", tally.kind)], factory: factory
            )
            .increment(by: tally.count)
        }
        Gauge(label: Name.unreachableNodes, factory: factory).record(pass.unreachableNodes)
        Gauge(label: Name.blockedNodes, factory: factory).record(pass.blockedNodes)
        Gauge(label: Name.driftedChannels, factory: factory).record(pass.driftedChannels)
        Gauge(label: Name.oldestKeyAge, factory: factory).record(pass.oldestKeyAgeSeconds ?? 0)
        if let next = pass.secondsUntilNextRekey {
            Gauge(label: Name.nextRekey, factory: factory).record(next)
        }
        recordDrops(pass.dropCounters)
        recordCertificateExpiries(pass.agentCertificateExpiries)
        lastKeyAges.withLock { $0 = pass.activeKeyAges }
    }

    /// Counts the cycle, and samples every active key's age (as the cycle's last pass left
    /// them) into `meshward_key_age_seconds`: once per cycle, so a cycle of many passes weighs
    /// no more than a cycle of one.
    public func record(cycle: CycleOutcome) {
        Counter(label: Name.cycles, dimensions: [("outcome", cycle.rawValue)], factory: factory).increment()
        let ages = lastKeyAges.withLock { ages in
            defer { ages = [] }
            return ages
        }
        let histogram = Recorder(label: Name.keyAge, aggregate: true, factory: factory)
        for age in ages { histogram.record(age) }
    }

    public func record(lease: LeaseState) {
        switch lease {
        case .leading(let epoch):
            Gauge(label: Name.leaseLeading, factory: factory).record(1)
            Gauge(label: Name.leaseEpoch, factory: factory).record(epoch)
        case .standby:
            Gauge(label: Name.leaseLeading, factory: factory).record(0)
        }
    }

    /// Sets the watch's gauges and adds to its counters what moved since the last summary.
    public func record(watch: WatchSummary) {
        for (state, count) in [("live", watch.live), ("stale", watch.stale), ("polled", watch.polled)] {
            Gauge(label: Name.watchNodes, dimensions: [("state", state)], factory: factory).record(count)
        }
        Gauge(label: Name.watchCacheAge, factory: factory).record(watch.cacheAgeSeconds)
        let last = lastWatch.withLock { last in
            defer { last = watch }
            return last
        }
        for (name, now, before) in [
            (Name.watchChanges, watch.changes, last.changes),
            (Name.watchSnapshots, watch.snapshots, last.snapshots),
            (Name.watchDigestMismatches, watch.digestMismatches, last.digestMismatches),
            (Name.watchResumes, watch.resumes, last.resumes),
        ] where now > before {
            Counter(label: name, factory: factory).increment(by: now - before)
        }
    }

    /// Adds to `meshward_xfrm_drops_total{node,counter}` what each counter moved since the last
    /// observation (`DropCounterFeed`).
    private func recordDrops(_ observed: [String: [String: UInt64]]) {
        drops.feed(observed) { node, name in
            Counter(label: Name.xfrmDrops, dimensions: [("node", node), ("counter", name)], factory: factory)
        }
    }

    /// Sets `meshward_agent_certificate_expiry_timestamp_seconds{node}` for every node whose
    /// agent answered with a certificate; a node's series stays at its last value while its agent
    /// does not answer.
    private func recordCertificateExpiries(_ expiries: [String: Double]) {
        for (node, expiry) in expiries {
            Gauge(label: Name.agentCertificateExpiry, dimensions: [("node", node)], factory: factory).record(expiry)
        }
    }
}
