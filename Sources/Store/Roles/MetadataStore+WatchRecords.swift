import Foundation

extension MetadataStore {
    /// The metadata key that holds every watched node's `WatchRecord`, as one JSON object by node.
    public static var watchRecordsKey: String { "agents.watch" }

    /// Every watched node's record, by node.
    ///
    /// Throws `StoreError.corrupt` naming the key when its value is not what `recordWatch` writes.
    public func watchRecords() async throws -> [String: WatchRecord] {
        guard let text = try await metadata(Self.watchRecordsKey) else { return [:] }
        do {
            return try JSONDecoder().decode([String: WatchRecord].self, from: Data(text.utf8))
        } catch {
            throw StoreError.corrupt(path: "metadata key '\(Self.watchRecordsKey)'", reason: "\(error)")
        }
    }

    /// Replaces the watch records with `records` (the loop's watch follows exactly these nodes).
    /// Fenced by the lease like every metadata write.
    public func recordWatch(_ records: [String: WatchRecord]) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(records)
        try await setMetadata(Self.watchRecordsKey, records.isEmpty ? nil : String(decoding: data, as: UTF8.self))
    }
}
