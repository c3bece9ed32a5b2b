import DesiredState
import Foundation
import MeshwardCore

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

    static func load(from store: some SettingsStore) throws -> ControllerSettings? {
        guard let text = try store.metadata(metadataKey) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(ControllerSettings.self, from: Data(text.utf8))
    }

    func save(to store: some SettingsStore) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        try store.setMetadata(Self.metadataKey, String(decoding: try encoder.encode(self), as: UTF8.self))
    }
}

/// The metadata part of the Store.
protocol SettingsStore {
    func metadata(_ key: String) throws -> String?
    func setMetadata(_ key: String, _ value: String?) throws
}
