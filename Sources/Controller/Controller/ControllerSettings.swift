import DesiredState
import Foundation
import MeshwardCore
import Reconciler
import Store

/// What the controller remembers of the last applied spec, in the Store's metadata, so that
/// `status` (which takes no spec) can say when keys rotate and where removed nodes live.
///
/// Stored as JSON in the form every release has written and read (`ControllerSettings+Stored`).
struct ControllerSettings: Sendable, Equatable {
    var cluster: String
    /// The reqid that marks Meshward's objects in this fleet.
    var reqid: UInt32
    var revision: String
    /// How old a channel's active generation grows before it is rotated.
    var rekeyEvery: Duration
    var rekeyPackets: UInt64?
    /// How long an old inbound SA stays after its sender switched away.
    var drain: Duration
    /// Each node's endpoint, including nodes the spec dropped whose channels are still being
    /// removed.
    var endpoints: [String: NodeEndpoint]
    /// When an operator asked for each channel's rekey.
    var rekeyRequests: [ChannelID: Date]

    static let metadataKey = "controller.settings"

    /// The settings the last `apply` recorded; nil before the first. Throws
    /// `ControllerError.unreadableSettings` when the stored text is not settings this release reads.
    static func load(from store: any MetadataStore) async throws -> ControllerSettings? {
        guard let text = try await store.metadata(metadataKey) else { return nil }
        do {
            return try ControllerSettings(storedText: text)
        } catch let error as DecodingError {
            throw ControllerError.unreadableSettings(key: metadataKey, reason: Self.reason(error))
        }
    }

    func save(to store: any MetadataStore) async throws {
        try await store.setMetadata(Self.metadataKey, try storedText())
    }
}
