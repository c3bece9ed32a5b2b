import DesiredState
import Foundation
import Kernel
import Reconciler

/// The nodes whose every certificate is revoked, as one pass sees them: for their peers they
/// are nodes that left the spec (the peers' SAs and policies toward them are removed in the
/// safe order), and they themselves are never dialled again.
public struct RevokedNodes: Sendable, Hashable {
    public let names: Set<String>

    public init(_ names: Set<String>) {
        self.names = names
    }

    /// `intent` without the revoked nodes and every channel from or to one of them.
    public func intent(_ intent: FleetIntent) -> FleetIntent {
        guard !names.isEmpty, intent.nodes.contains(where: { names.contains($0.name) }) else { return intent }
        return FleetIntent(
            cluster: intent.cluster, reqid: intent.reqid, nodes: intent.nodes.filter { !names.contains($0.name) },
            channels: intent.channels.filter { !names.contains($0.id.from) && !names.contains($0.id.to) },
            flowCount: intent.flowCount, certificateLifetime: intent.certificateLifetime)
    }

    /// `kernels` with the revoked nodes gone: not known (so the planner waits for nothing of
    /// theirs) and refused before any connection is made.
    public func kernels(_ kernels: any FleetKernels) -> any FleetKernels {
        names.isEmpty ? kernels : KernelsWithoutRevoked(base: kernels, revoked: names)
    }
}

/// A fleet's kernels with some nodes revoked: they are unknown and never dialled.
final class KernelsWithoutRevoked: FleetKernels {
    let base: any FleetKernels
    let revoked: Set<String>

    init(base: any FleetKernels, revoked: Set<String>) {
        self.base = base
        self.revoked = revoked
    }

    var knownNodes: Set<String> { base.knownNodes.subtracting(revoked) }

    func kernel(for node: String) async throws -> any NodeKernel {
        if revoked.contains(node) {
            throw KernelError.unreachable(node: node, reason: "its certificates are revoked; it is never dialled")
        }
        return try await base.kernel(for: node)
    }

    func persist() throws { try base.persist() }

    func close() async { await base.close() }
}
