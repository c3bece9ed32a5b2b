import MeshwardCore

/// The compiled, validated spec: every node and every channel the fleet should have.
///
/// Immutable and independent of how the spec was split into files or in which order they were
/// given: the same spec always compiles to an equal value with the same `revision`. Two intents
/// are equal when their revisions are (the revision is a digest of everything the intent holds
/// but `sources`).
public struct FleetIntent: Sendable, Hashable {
    /// The cluster's name.
    public let cluster: String
    /// The request id that marks the kernel objects Meshward owns.
    public let reqid: UInt32
    /// Every node, sorted by name.
    public let nodes: [NodeIntent]
    /// Every channel, sorted by `id` (from, to, family).
    public let channels: [ChannelIntent]
    /// The number of flows the spec declares.
    public let flowCount: Int
    /// How long an agent certificate issued for this fleet is valid (`defaults.certificates.lifetime`).
    public let certificateLifetime: Duration
    /// Lowercase hex SHA-256 of a canonical serialization of everything above.
    public let revision: String
    /// The files the intent was compiled from, as they were read (empty for an intent built in
    /// code): `apply` records them, so that `plan --refresh=false` knows what the kernels were
    /// last given. They take no part in equality or the revision.
    public internal(set) var sources: [SpecSource] = []

    /// The certificate lifetime of a spec that does not set one: 7 days.
    public static let defaultCertificateLifetime: Duration = .seconds(7 * 86_400)
    /// The lifetimes a spec may set: from 1 hour to 365 days.
    public static let certificateLifetimeRange: ClosedRange<Duration> = .seconds(3_600) ... .seconds(365 * 86_400)

    /// Creates an intent, sorting nodes and channels and computing the revision.
    public init(
        cluster: String, reqid: UInt32, nodes: [NodeIntent], channels: [ChannelIntent], flowCount: Int,
        certificateLifetime: Duration = FleetIntent.defaultCertificateLifetime
    ) {
        let sortedNodes = nodes.sorted { $0.name < $1.name }
        var sortedChannels = channels
        if !FleetIntent.isSorted(sortedChannels) { sortedChannels.sort { $0.id < $1.id } }
        self.init(
            cluster: cluster, reqid: reqid, sortedNodes: sortedNodes, sortedChannels: sortedChannels,
            flowCount: flowCount, certificateLifetime: certificateLifetime)
    }

    init(
        cluster: String, reqid: UInt32, sortedNodes: [NodeIntent], sortedChannels: [ChannelIntent], flowCount: Int,
        certificateLifetime: Duration = FleetIntent.defaultCertificateLifetime
    ) {
        self.cluster = cluster
        self.reqid = reqid
        self.nodes = sortedNodes
        self.channels = sortedChannels
        self.flowCount = flowCount
        self.certificateLifetime = certificateLifetime
        self.revision = FleetIntent.revision(
            cluster: cluster, reqid: reqid, nodes: sortedNodes,
            channels: sortedChannels, flowCount: flowCount, certificateLifetime: certificateLifetime)
    }

    private static func isSorted(_ channels: [ChannelIntent]) -> Bool {
        zip(channels, channels.dropFirst()).allSatisfy { $0.id < $1.id }
    }

    /// The node called `name`, or nil.
    public func node(named name: String) -> NodeIntent? {
        var low = 0
        var high = nodes.count
        while low < high {
            let middle = (low + high) / 2
            if nodes[middle].name < name { low = middle + 1 } else { high = middle }
        }
        return low < nodes.count && nodes[low].name == name ? nodes[low] : nil
    }

    /// The channel `id`, or nil.
    public func channel(_ id: ChannelID) -> ChannelIntent? {
        var low = 0
        var high = channels.count
        while low < high {
            let middle = (low + high) / 2
            if channels[middle].id < id { low = middle + 1 } else { high = middle }
        }
        return low < channels.count && channels[low].id == id ? channels[low] : nil
    }

    /// The channels a node sends on or receives on.
    public func channels(of node: String) -> [ChannelIntent] {
        channels.filter { $0.id.from == node || $0.id.to == node }
    }

    public static func == (lhs: FleetIntent, rhs: FleetIntent) -> Bool { lhs.revision == rhs.revision }

    public func hash(into hasher: inout Hasher) { hasher.combine(revision) }

    /// The first 12 hex digits of `revision`, as summaries print it.
    public var shortRevision: String { String(revision.prefix(12)) }
}
