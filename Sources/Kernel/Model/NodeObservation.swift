import Foundation
import MeshwardCore

/// What one read of a node's kernel showed: the SAs and policies that carry Meshward's reqid
/// (foreign objects are never reported), and the namespace's XFRM statistics.
public struct NodeObservation: Sendable, Hashable {
    public var securityAssociations: [SecurityAssociation]
    public var policies: [SecurityPolicy]
    /// `/proc/net/xfrm_stat` of the node's namespace: counter name -> value (`XfrmInNoStates` ...).
    public var statistics: [String: UInt64]
    /// SPIs of foreign SAs, per destination address: Meshward never issues one of these.
    public var foreignSPIs: Set<SAIdentifier>
    /// The host's boot ID (`/proc/sys/kernel/random/boot_id`) when the backend reports one (an
    /// agent does): it changes on every boot, so a changed one says the kernel started empty.
    public var bootID: String?
    /// When the certificate the node's agent presented stops being valid (its `notValidAfter`),
    /// when the kernel is behind an agent; nil for a kernel reached directly.
    public var agentCertificateExpiry: Date?
    /// The position of the kernel's watch (`NodeKernel.watch(from:)`) that this reading
    /// matches: its model was resynchronised to this reading at that position. Nil when the
    /// kernel is not watched.
    public var watchPosition: WatchPosition?

    public init(
        securityAssociations: [SecurityAssociation] = [], policies: [SecurityPolicy] = [],
        statistics: [String: UInt64] = [:], foreignSPIs: Set<SAIdentifier> = []
    ) {
        self.securityAssociations = securityAssociations
        self.policies = policies
        self.statistics = statistics
        self.foreignSPIs = foreignSPIs
    }
}
