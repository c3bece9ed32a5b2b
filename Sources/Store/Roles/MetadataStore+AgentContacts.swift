import Foundation

extension MetadataStore {
    /// The metadata key that holds every node's `AgentContact`, as one JSON object by node.
    public static var agentContactsKey: String { "agents.contacts" }

    /// Every agent contact on record, by node.
    ///
    /// Throws `StoreError.corrupt` naming the key when its value is not what `recordAgentContacts`
    /// writes.
    public func agentContacts() async throws -> [String: AgentContact] {
        guard let text = try await metadata(Self.agentContactsKey) else { return [:] }
        do {
            return try Self.contactDecoder.decode([String: AgentContact].self, from: Data(text.utf8))
        } catch {
            throw StoreError.corrupt(path: "metadata key '\(Self.agentContactsKey)'", reason: "\(error)")
        }
    }

    /// Records `contacts` over the ones on record (a node's newer contact replaces its older
    /// one; other nodes' are kept), and forgets the nodes in `forgetting`. Fenced by the lease
    /// like every metadata write; a contact older than the one on record is ignored.
    public func recordAgentContacts(_ contacts: [AgentContact], forgetting: Set<String> = []) async throws {
        guard !contacts.isEmpty || !forgetting.isEmpty else { return }
        var all = try await agentContacts()
        for node in forgetting { all[node] = nil }
        for contact in contacts where (all[contact.node]?.lastContact ?? .distantPast) <= contact.lastContact {
            all[contact.node] = contact
        }
        let data = try Self.contactEncoder.encode(all)
        try await setMetadata(Self.agentContactsKey, all.isEmpty ? nil : String(decoding: data, as: UTF8.self))
    }

    /// Dates as seconds since the reference date, with their fraction, so they read back exactly.
    private static var contactEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    private static var contactDecoder: JSONDecoder { JSONDecoder() }
}
