import Foundation
import MeshwardCore
import Testing

@testable import Store

/// What the controller records of each node's agent for `status` (`MetadataStore`'s agent
/// contacts), run against every conformer: it survives to another connection, as `status` is
/// another process.
@Suite("Store roles: agent contacts")
struct AgentContactTests {
    static func contact(_ node: String, boot: String, at seconds: TimeInterval) -> AgentContact {
        AgentContact(
            node: node, address: "198.18.1.\(node.count):7443",
            certificateNotValidAfter: Date(timeIntervalSince1970: 1_900_000_000), bootID: boot,
            lastContact: t0.addingTimeInterval(seconds))
    }

    @Test(
        "agent contacts are recorded, read from another connection, replaced only by newer ones, and forgotten",
        arguments: StoreConformer.all)
    func contacts(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        #expect(try await test.store.agentContacts().isEmpty)
        let web = Self.contact("web-1", boot: "boot-a", at: 10)
        let app = Self.contact("app-1", boot: "boot-b", at: 10)
        try await test.store.recordAgentContacts([web, app])
        #expect(try await test.connect().agentContacts() == ["web-1": web, "app-1": app])

        // A newer contact replaces the node's; an older one and the other node's are left alone.
        let rebooted = Self.contact("web-1", boot: "boot-c", at: 20)
        let stale = Self.contact("app-1", boot: "boot-old", at: 5)
        try await test.store.recordAgentContacts([rebooted, stale])
        #expect(try await test.connect().agentContacts() == ["web-1": rebooted, "app-1": app])

        // A contact without certificate or boot ID reads back without them.
        let bare = AgentContact(
            node: "db-1", address: "[2001:db8::30]:7443", certificateNotValidAfter: nil, bootID: nil,
            lastContact: t0.addingTimeInterval(30))
        try await test.store.recordAgentContacts([bare], forgetting: ["app-1"])
        #expect(try await test.connect().agentContacts() == ["web-1": rebooted, "db-1": bare])

        try await test.store.recordAgentContacts([], forgetting: ["web-1", "db-1"])
        #expect(try await test.connect().agentContacts().isEmpty)
        #expect(try await test.store.metadata(StateStore.agentContactsKey) == nil)
    }

    @Test("a damaged agent-contacts value is refused naming its key", arguments: StoreConformer.all)
    func damaged(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        try await test.store.setMetadata("agents.contacts", "{not json")
        await #expect {
            _ = try await test.store.agentContacts()
        } throws: { error in
            "\(error)".contains("metadata key 'agents.contacts'")
        }
    }
}
