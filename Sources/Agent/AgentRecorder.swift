import Foundation

/// What one request to an agent was, for metrics: a bounded set of kinds.
public enum AgentRequestKind: String, Sendable, Hashable, CaseIterable {
    case observe
    case apply
    case markReady = "mark-ready"
    /// A certificate renewal's first step (new key, CSR) and its last (the new certificate).
    case requestRenewal = "request-renewal"
    case completeRenewal = "complete-renewal"
    /// A watch stream opened (wire version 2); refused ones too.
    case watch
}

/// How an agent answered one request: a bounded set of results.
public enum AgentRequestResult: String, Sendable, Hashable, CaseIterable {
    /// Served: an observation returned, a batch handed to the kernel (whatever the kernel said
    /// of each operation), a ready mark taken.
    case ok
    /// An apply with a lease epoch lower than one already accepted (a deposed controller).
    case staleEpoch = "stale-epoch"
    /// The client announced a wire version this agent does not speak.
    case versionMismatch = "version-mismatch"
    /// The request did not decode (an operation the agent cannot read).
    case invalid
    /// The agent's own kernel could not be opened or did not answer.
    case kernelUnavailable = "kernel-unavailable"
    /// A ready mark for another boot than this one, or from a deposed controller: not taken.
    case otherBoot = "other-boot"
    /// The agent failed on its side (its directory could not be written).
    case failed
}

/// Where an agent reports what it serves, for metrics. The agent never imports a metrics
/// library: it reports plain values and the conformer (Telemetry's `AgentMetrics`) exports them.
///
/// A conformer must return quickly and never throw: it only records.
public protocol AgentRecorder: Sendable {
    /// One request was answered, with `result`.
    func record(request: AgentRequestKind, result: AgentRequestResult)
    /// The highest lease epoch the agent has accepted: once at start, then whenever it rises.
    func record(highestEpoch: UInt64)
    /// The XFRM statistics (`/proc/net/xfrm_stat`, counter name -> value) an observe read.
    func record(statistics: [String: UInt64])
    /// A TLS handshake was refused, for `reason` (`ControlChannelTLS`, or the client's certificate).
    func record(handshakeRefused reason: HandshakeRefusalReason)
    /// A control connection was accepted (before its handshake): a controller keeps one per agent
    /// across its cycles, so these come when a controller starts or reconnects.
    func recordAcceptedConnection()
    /// How many watch streams are open now: at each opening and end.
    func record(watchStreamsOpen: Int)
    /// How a watch stream began: with a snapshot, or with a replay from the ring.
    func record(watchStart: WatchStart)
    /// Events were sent on watch streams.
    func record(watchEventsSent: Int)
    /// A watch stream ended because its controller did not read it fast enough.
    func recordWatchOverflow()
}

/// How a watch stream began (`AgentRecorder.record(watchStart:)`).
public enum WatchStart: String, Sendable, Hashable, CaseIterable {
    /// Every owned object, then the snapshot's end: no position, another epoch, or one that left
    /// the ring.
    case snapshot
    /// The changes after the position asked for, from the ring of recent changes.
    case resume
}

extension AgentRecorder {
    public func record(watchStreamsOpen: Int) {}
    public func record(watchStart: WatchStart) {}
    public func record(watchEventsSent: Int) {}
    public func recordWatchOverflow() {}
}

/// Records nothing: an agent run without `--metrics-address`.
public struct DiscardingAgentRecorder: AgentRecorder {
    public init() {}
    public func record(request: AgentRequestKind, result: AgentRequestResult) {}
    public func record(highestEpoch: UInt64) {}
    public func record(statistics: [String: UInt64]) {}
    public func record(handshakeRefused reason: HandshakeRefusalReason) {}
    public func recordAcceptedConnection() {}
}
