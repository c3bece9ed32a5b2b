import DesiredState
import Foundation
import Kernel
import MeshwardCore

/// Everything one pass's planning looks at: the intent, the stored channels, and what each
/// reachable node's kernel holds right now. A value: planning is pure.
public struct PlanningInput: Sendable {
    /// The compiled spec.
    public var intent: FleetIntent
    /// The Store's channels, with their generations (keys included).
    public var channels: [ChannelID: ChannelRecord]
    /// One observation per node that answered in this pass.
    public var observations: [String: NodeObservation]
    /// Nodes that were asked and did not answer, with the reason.
    public var unreachable: [String: String]
    /// Of those, the nodes whose agent answered with a provisional certificate and is not
    /// enrolled (`KernelError.waitingForEnrollment`).
    public var waitingForEnrollment: Set<String>
    /// Every node the controller can reach in principle (it has an endpoint for it). A peer
    /// outside this set is gone: nothing of its can be observed or will ever send again.
    public var knownNodes: Set<String>
    /// Channels whose key an operator asked to rotate, with the time of the request.
    public var rekeyRequests: [ChannelID: Date]
    /// The reqid that marks Meshward's objects.
    public var reqid: Reqid
    /// How long an old inbound SA stays for a channel the spec no longer names.
    public var defaultDrain: Duration
    /// The policy priority Meshward writes.
    public var priority: UInt32
    /// Inbound SAs that no generation accounts for (left by a lost Store), with the time a pass
    /// first saw their sender stop using them: their drain runs from then.
    public var unaccountedSAsFreedAt: [SAIdentifier: Date] = [:]
    /// The time of this pass.
    public var now: Date

    public init(
        intent: FleetIntent, channels: [ChannelID: ChannelRecord], observations: [String: NodeObservation],
        unreachable: [String: String] = [:], waitingForEnrollment: Set<String> = [], knownNodes: Set<String>,
        rekeyRequests: [ChannelID: Date] = [:],
        reqid: Reqid, defaultDrain: Duration = .seconds(5), priority: UInt32 = SecurityPolicy.defaultPriority,
        now: Date
    ) {
        self.intent = intent
        self.channels = channels
        self.observations = observations
        self.unreachable = unreachable
        self.waitingForEnrollment = waitingForEnrollment
        self.knownNodes = knownNodes
        self.rekeyRequests = rekeyRequests
        self.reqid = reqid
        self.defaultDrain = defaultDrain
        self.priority = priority
        self.now = now
    }
}

extension PlanningInput {
    /// Why a channel that needs `node` waits for it: its agent is waiting for enrollment, or it
    /// did not answer.
    func blockReason(needing node: String) -> BlockReason {
        let reason = unreachable[node] ?? "unreachable"
        return waitingForEnrollment.contains(node)
            ? .waitingForEnrollment(node: node, message: reason) : .didNotAnswer(node: node, reason: reason)
    }
}
