import Foundation
import Reconciler

/// The JSON documents the commands print with `--output json`. Field names are snake_case
/// and stable: pipelines parse them (docs/cli.md). Keys never appear in any of them.

/// `meshward plan`: the staged changes, per stage and node.
public struct PlanDocument: Codable, Sendable, Equatable {
    public struct Operation: Codable, Sendable, Equatable {
        public var node: String
        public var operation: String
        public var target: String
        public var channel: String?
    }

    public struct Stage: Codable, Sendable, Equatable {
        /// 1-based; one stage is one pass: every operation in it waits for the stage before.
        public var stage: Int
        /// Set when the stage may start only after a drain: the time it waits for.
        public var waitsUntil: Date?
        public var operations: [Operation]
    }

    public struct GenerationChange: Codable, Sendable, Equatable {
        public var channel: String
        public var reason: String
    }

    public struct Summary: Codable, Sendable, Equatable {
        public var channelsCreated: Int
        public var channelsRekeyed: Int
        /// Channels whose kernel objects change without a new generation (a port added to a flow).
        public var channelsUpdated: Int
        public var channelsRemoved: Int
        public var operations: Int
    }

    public var cluster: String
    public var revision: String
    /// True when applying would change something: a kernel object, a generation, or the
    /// recorded revision (a changed `rekey.every` moves every next rekey).
    public var changes: Bool
    public var summary: Summary
    public var generations: [GenerationChange]
    public var stages: [Stage]
    public var unreachable: [NodeProblem]
    /// The revision the last `apply` recorded; nil when the Store holds none.
    public var previousRevision: String?
    /// True when the spec's revision differs from the recorded one.
    public var revisionChanged: Bool
    /// Fleet-wide settings that differ from the recorded ones.
    public var settingsChanged: [PlanSettingChange]
    /// The channels counted in `summary.channels_updated`.
    public var updatedChannels: [String]
    /// One entry per channel the plan touches, sorted by channel: what happens to it and what
    /// changes (the lines of the text plan).
    public var channelChanges: [PlanChannelChange]
    /// Problems that do not stop the plan but need a person (an empty Store beside kernels
    /// holding Meshward's objects).
    public var warnings: [String]
    /// With `plan --target`: the node or `FROM:TO` the plan is limited to.
    public var target: String?
    /// SHA-256 over the Store's channel records and recorded revision when the plan was made;
    /// `apply PLANFILE` refuses when it changed. Carries no key material. Nil when no kernel
    /// was read (`plan --refresh=false`, which cannot be saved).
    public var stateFingerprint: String?
    /// SHA-256 over the kernel objects the plan read (addresses, SPIs, ciphers, policies; never
    /// keys, never counters) and which nodes answered; nil when no kernel was read.
    public var fleetFingerprint: String?
    /// False when the plan read no kernel (`plan --refresh=false`): it took every kernel to
    /// hold what the Store's records say. Nil in plans saved before it existed, which read them.
    public var kernelsRead: Bool?
}

/// A node that could not be reached, and why.
public struct NodeProblem: Codable, Sendable, Equatable {
    public var node: String
    public var reason: String
}

/// `meshward apply`, `rekey` and each `reconcile` cycle: what was done.
public struct ApplyDocument: Codable, Sendable, Equatable {
    public struct Issued: Codable, Sendable, Equatable {
        public var channel: String
        public var spi: String
        public var reason: String
    }

    public struct Failure: Codable, Sendable, Equatable {
        public var node: String
        public var operation: String
        public var target: String
        public var error: String
    }

    public var cluster: String
    public var revision: String
    /// How the run ended; encoded as `converged`, `waiting-for-drain` or `blocked`.
    public var outcome: ApplyOutcome
    public var passes: Int
    public var operations: Int
    public var failures: [Failure]
    public var generationsIssued: [Issued]
    public var unreachable: [NodeProblem]
    /// With `waiting-for-drain`: when the next run can finish.
    public var waitingUntil: Date?
    /// `reconcile` only, and only when this cycle restored nodes that earlier cycles found
    /// unreachable: each with how long it was out. Absent from `apply`.
    public var restored: [RestoredNode]?
}

/// A node the reconcile loop found unreachable and has now reached and reconciled again.
public struct RestoredNode: Codable, Sendable, Equatable {
    public var node: String
    /// The start of the first cycle that found it unreachable.
    public var unreachableSince: Date
    /// From `unreachable_since` to the end of the cycle that restored it, in seconds.
    public var restoreSeconds: Double

    public init(node: String, unreachableSince: Date, restoreSeconds: Double) {
        self.node = node
        self.unreachableSince = unreachableSince
        self.restoreSeconds = restoreSeconds
    }
}

/// `meshward status`: per node and per channel.
public struct StatusDocument: Codable, Sendable, Equatable {
    public struct Node: Codable, Sendable, Equatable {
        public var name: String
        public var endpoint: String
        public var reachable: Bool
        public var error: String?
        /// Owned SAs and policies the node holds.
        public var securityAssociations: Int
        public var policies: Int
        /// Every non-zero `/proc/net/xfrm_stat` counter.
        public var dropCounters: [String: UInt64]
        /// For a node behind an agent: what this status saw of it, or, when it cannot reach the
        /// agent now, what the controller's last pass recorded. Nil for other endpoints.
        public var agent: AgentStatus? = nil
        /// For a node whose kernel the controller watches (`agent`, `local` and `netns:`
        /// endpoints): the watch as the reconcile loop last recorded it; nil when no loop has
        /// watched it. An agent's is also in `agent.watch`, where it was first reported.
        public var watch: WatchStatus? = nil
    }

    /// A node's agent, as `status` shows it.
    public struct AgentStatus: Codable, Sendable, Equatable {
        /// `HOST:PORT` dialled.
        public var address: String
        /// When the certificate the agent presented expires; nil when never seen.
        public var certificateExpires: Date?
        /// The host's boot ID in its last observation.
        public var bootID: String?
        /// When the agent last answered: now, for an agent this status reached; else the start of
        /// the controller's last pass that observed it; nil when none ever did.
        public var lastContact: Date?
        /// True when the values come from this status's own contact, false when from the Store.
        public var live: Bool
        /// The TLS of the connection this status observed the agent through, as its ServerHello
        /// said on the wire; nil when the agent was not reached now (never recorded).
        public var tls: TLSStatus? = nil
        /// The reconcile loop's watch of the node's kernel, as the loop last recorded it; nil
        /// when no loop has watched it. The same as the node's `watch`.
        public var watch: WatchStatus? = nil
    }

    /// A node's watch stream, as the reconcile loop last recorded it (design.md §12).
    public struct WatchStatus: Codable, Sendable, Equatable {
        /// `live`, `stale` (silent for three progress intervals) or `polled` (its kernel has no
        /// watch: an agent of wire version 1).
        public var state: String
        /// When its stream last said anything, and when the node's objects last changed on it.
        public var lastMessage: Date?
        public var lastChange: Date?
        /// Copies rebuilt from a snapshot, how many a progress digest forced, and streams opened
        /// again after they ended.
        public var snapshots: Int
        public var digestMismatches: Int
        public var resumes: Int
        /// When the loop recorded this (at the end of its last cycle).
        public var recordedAt: Date
    }

    /// The TLS a connection to an agent negotiated.
    public struct TLSStatus: Codable, Sendable, Equatable {
        /// `TLSv1.3`: the only version the control channel speaks.
        public var `protocol`: String
        /// `X25519MLKEM768`: the only key exchange the control channel agrees on.
        public var keyExchange: String
    }

    public struct Channel: Codable, Sendable, Equatable {
        public var channel: String
        public var from: String
        public var to: String
        public var family: String
        public var step: String
        public var generation: Int?
        public var spi: String?
        public var cipher: String?
        public var keyAgeSeconds: Int?
        public var nextRekey: Date?
        /// True when the kernels differ from what the spec and the Store say they should hold.
        public var drift: Bool
        public var driftDetail: [String]
        /// Seconds until `next_rekey`; negative when the rekey is overdue (the next `apply` or
        /// reconcile cycle does it). Nil without an active generation.
        public var rekeyInSeconds: Int?
        /// True when `next_rekey` has passed.
        public var rekeyOverdue: Bool = false
        /// The active generation's SA counters as the kernels report them (`xfrm_lifetime_cur`):
        /// `outbound` from the sender's SA, `inbound` from the receiver's. Nil for an end that did
        /// not answer or lacks the SA.
        public var outbound: SACounterReport?
        public var inbound: SACounterReport?
        /// While a generation drains: when its old inbound SA may go (the switch plus `drain`).
        public var drainUntil: Date?
    }

    /// One SA's counters.
    public struct SACounterReport: Codable, Sendable, Equatable {
        public var packets: UInt64
        public var bytes: UInt64
        /// The SA's first use as the kernel reports it (`use_time`); nil when never used.
        public var firstUsed: Date?
    }

    /// The fleet at a glance, over every node and channel `status` read (with `--node`, that
    /// node's part); `--step`, `--drift` and `--channel` narrow only the channel list, never this.
    public struct Summary: Codable, Sendable, Equatable {
        public var nodesReachable: Int
        public var nodesUnreachable: Int
        /// Step name -> number of channels in it.
        public var channelsByStep: [String: Int]
        public var channelsDrifted: Int
        public var rekeysOverdue: Int
        /// Nodes whose drop counters are not zero (kernel counters start at zero at boot).
        public var nodesWithDrops: [String]
        /// Counter name -> sum over the nodes read.
        public var dropCounters: [String: UInt64]
    }

    /// Who leads: the Store's lease as stored, whether or not it has expired.
    public struct LeaseStatus: Codable, Sendable, Equatable {
        /// The controller holding it (`HOST pid N`).
        public var holder: String
        public var epoch: Int64
        /// When this holder took it (renewals keep it): leading since.
        public var acquiredAt: Date
        /// When it lapses unless renewed (the Store's clock: the server's on PostgreSQL).
        public var expiresAt: Date
    }

    public var cluster: String?
    public var revision: String?
    public var observedAt: Date
    public var nodes: [Node]
    public var channels: [Channel]
    /// Problems a person must look at (an empty Store beside kernels holding Meshward's
    /// objects); `status` exits 1 when there is one.
    public var warnings: [String]
    /// The header of the text form. Added in 0.2 of the status document; older readers ignore it.
    public var summary: Summary?
    /// The lease: which controller leads, since when, under which epoch; nil when none holds it.
    public var lease: LeaseStatus?
}

/// `meshward history`: applied revisions, newest first.
public struct HistoryDocument: Codable, Sendable, Equatable {
    public struct Revision: Codable, Sendable, Equatable {
        public var id: Int64
        public var hash: String
        public var source: String
        public var appliedAt: Date
        public var summary: String
        /// What made the revision: `apply`, `rekey --node web-1`, `reconcile`; nil for revisions
        /// recorded before Meshward kept it.
        public var command: String?
    }

    public var revisions: [Revision]
}

/// The encoder every JSON document goes through: snake_case keys, ISO 8601 dates, sorted keys.
public enum DocumentEncoding {
    public static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// `value` as one line of JSON (JSON Lines) with a `timestamp` member added at the top
    /// level: what `reconcile --output json` prints per cycle.
    public static func jsonLine<T: Encodable>(_ value: T, timestamp: Date) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let encoded = try encoder.encode(value)
        guard var object = try JSONSerialization.jsonObject(with: encoded) as? [String: Any] else {
            return String(decoding: encoded, as: UTF8.self)
        }
        object["timestamp"] = timestamp.formatted(.iso8601)
        let line = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: line, as: UTF8.self)
    }
}
