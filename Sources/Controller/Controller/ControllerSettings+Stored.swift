import Foundation
import MeshwardCore
import Reconciler

/// The settings' stored form, JSON with sorted keys and ISO 8601 dates, unchanged since the first
/// release so that a Store written by any release reads back:
/// `{"cluster":…,"drainSeconds":5,"endpoints":{"web-1":"netns:web-1"},"rekeyEverySeconds":86400,`
/// `"rekeyPackets":…,"rekeyRequests":{"web-1->app-1\/ipv4":"2026-01-01T00:00:00Z"},"reqid":…,"revision":…}`.
/// Durations are seconds, endpoints and channels their spec spelling; `rekeyPackets` is left out
/// when unset.
extension ControllerSettings: Codable {
    private enum CodingKeys: String, CodingKey {
        case cluster, reqid, revision, rekeyEverySeconds, rekeyPackets, drainSeconds, endpoints, rekeyRequests
    }

    /// Reads the stored JSON; throws `DecodingError` naming the key (and the node or channel) that
    /// does not read.
    init(storedText text: String) throws {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        self = try decoder.decode(ControllerSettings.self, from: Data(text.utf8))
    }

    /// The JSON `init(storedText:)` reads.
    func storedText() throws -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        cluster = try container.decode(String.self, forKey: .cluster)
        reqid = try container.decode(UInt32.self, forKey: .reqid)
        revision = try container.decode(String.self, forKey: .revision)
        rekeyEvery = try Self.decodeDuration(.rekeyEverySeconds, in: container)
        rekeyPackets = try container.decodeIfPresent(UInt64.self, forKey: .rekeyPackets)
        drain = try Self.decodeDuration(.drainSeconds, in: container)
        endpoints = [:]
        for (node, text) in try container.decode([String: String].self, forKey: .endpoints) {
            guard let endpoint = NodeEndpoint(text) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .endpoints, in: container,
                    debugDescription: "node '\(node)' has the endpoint '\(text)', which is not sim, local, "
                        + "netns:NAME, agent or agent:HOST[:PORT]")
            }
            endpoints[node] = endpoint
        }
        rekeyRequests = [:]
        for (text, requested) in try container.decode([String: Date].self, forKey: .rekeyRequests) {
            guard let channel = ChannelID(text) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .rekeyRequests, in: container,
                    debugDescription: "'\(text)' is not a channel (FROM->TO/ipv4 or FROM->TO/ipv6)")
            }
            rekeyRequests[channel] = requested
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(cluster, forKey: .cluster)
        try container.encode(reqid, forKey: .reqid)
        try container.encode(revision, forKey: .revision)
        try container.encode(rekeyEvery.timeInterval, forKey: .rekeyEverySeconds)
        try container.encodeIfPresent(rekeyPackets, forKey: .rekeyPackets)
        try container.encode(drain.timeInterval, forKey: .drainSeconds)
        try container.encode(endpoints.mapValues(\.description), forKey: .endpoints)
        try container.encode(
            Dictionary(uniqueKeysWithValues: rekeyRequests.map { ($0.key.description, $0.value) }),
            forKey: .rekeyRequests)
    }

    /// A duration stored as seconds: exactly a whole number of milliseconds when it is one (as
    /// every duration a spec gives is), the nearest duration otherwise, so that it is written back
    /// as the same number.
    private static func decodeDuration(
        _ key: CodingKeys, in container: KeyedDecodingContainer<CodingKeys>
    ) throws -> Duration {
        let seconds = try container.decode(Double.self, forKey: key)
        guard seconds.isFinite, seconds >= 0, seconds < 1e15 else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container, debugDescription: "\(seconds) is not a number of seconds, 0 or more")
        }
        let milliseconds = Duration.milliseconds(Int64((seconds * 1000).rounded()))
        return milliseconds.timeInterval == seconds ? milliseconds : .seconds(seconds)
    }

    /// What a `DecodingError` says, for an operator: the key it concerns, then the problem.
    static func reason(_ error: DecodingError) -> String {
        func located(_ context: DecodingError.Context, _ problem: String) -> String {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? problem : "\(path): \(problem)"
        }
        switch error {
        case .dataCorrupted(let context):
            return located(context, context.debugDescription)
        case .keyNotFound(let key, let context):
            return located(context, "`\(key.stringValue)` is missing")
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return located(context, "expected \(type)")
        @unknown default:
            return "\(error)"
        }
    }
}
