import Agent
import Foundation
import Kernel
import MeshwardCore
import Reconciler
import Store
import Synchronization

/// The agent contacts of one run, from every pass's observations: per node behind an agent,
/// the address dialled, the certificate's expiry, the boot ID and when the pass began. The run
/// records them in the Store at its end (`MetadataStore.recordAgentContacts`) for `status`.
final class AgentContactLog: Sendable {
    private let contacts = Mutex<[String: AgentContact]>([:])

    /// Notes every agent node that `pass` observed.
    func note(_ pass: PassReport, agents: AgentConnectionPool, endpoints: [String: NodeEndpoint]) {
        for (node, observation) in pass.observations where endpoints[node]?.scheme == .agent {
            guard let kernel = agents.link(for: node) else { continue }
            let contact = AgentContact(
                node: node, address: kernel.address, certificateNotValidAfter: kernel.certificateNotValidAfter,
                bootID: observation.bootID, lastContact: pass.startedAt)
            contacts.withLock { $0[node] = contact }
        }
    }

    /// Notes that `node`'s agent now serves a renewed certificate that expires at `expires`.
    func renewed(_ node: String, expires: Date) {
        contacts.withLock { $0[node]?.certificateNotValidAfter = expires }
    }

    /// Every contact noted, by node.
    var all: [AgentContact] { contacts.withLock { Array($0.values) } }
}
