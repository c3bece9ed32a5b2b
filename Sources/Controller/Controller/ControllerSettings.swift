import DesiredState
import Foundation
import MeshwardCore
import Reconciler
import Store

/// What the controller remembers of the last applied spec, in the Store's metadata, so that
/// `status` (which takes no spec) can say when keys rotate and where removed nodes live.
struct ControllerSettings: Codable, Sendable, Equatable {
    var cluster: String
    /// The reqid that marks Meshward's objects in this fleet.
    var reqid: UInt32
    var revision: String
    var rekeyEverySeconds: Double
    var rekeyPackets: UInt64?
    var drainSeconds: Double
    /// Node name -> endpoint (`sim`, `local`, `netns:NAME`), including nodes the spec dropped
    /// whose channels are still being removed.
    var endpoints: [String: String]
    /// Channel (`from->to/family`) -> when an operator asked for a rekey.
    var rekeyRequests: [String: Date]

    static let metadataKey = "controller.settings"

    static func load(from store: any MetadataStore) async throws -> ControllerSettings? {
        guard let text = try await store.metadata(metadataKey) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(ControllerSettings.self, from: Data(text.utf8))
    }

    func save(to store: any MetadataStore) async throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        try await store.setMetadata(Self.metadataKey, String(decoding: try encoder.encode(self), as: UTF8.self))
    }
}
