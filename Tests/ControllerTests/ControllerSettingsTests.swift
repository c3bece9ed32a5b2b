import Foundation
import MeshwardCore
import Store
import Synchronization
import Testing

@testable import Controller

/// The controller settings in the Store's metadata: typed in code, and the same JSON in the Store
/// as every earlier release wrote, so that a Store reads back across releases both ways.
@Suite("Controller settings in the Store")
struct ControllerSettingsTests {
    /// Metadata in memory.
    final class Metadata: MetadataStore {
        let values = Mutex<[String: String]>([:])

        init(_ settings: String) { values.withLock { $0[ControllerSettings.metadataKey] = settings } }

        func metadata(_ key: String) -> String? { values.withLock { $0[key] } }
        func setMetadata(_ key: String, _ value: String?) { values.withLock { $0[key] = value } }
    }

    /// Settings as the release before typed settings stored them (its synthesized `Codable`, sorted
    /// keys, ISO 8601 dates): every kind of endpoint, two rekey requests, fractional durations.
    static let stored = """
        {"cluster":"shop","drainSeconds":2.5,"endpoints":{"app-1":"netns:app-1","db-1":"agent",\
        "db-2":"agent:198.18.1.12:7443","db-3":"agent:[2001:db8::13]:8443","lb-1":"local","web-1":"sim"},\
        "rekeyEverySeconds":5400.25,"rekeyPackets":1000000000,"rekeyRequests":{"app-1->web-1\\/ipv6":\
        "2026-01-01T01:00:00Z","web-1->app-1\\/ipv4":"2026-01-01T00:00:00Z"},"reqid":19799,\
        "revision":"3f2a9c0d1e5b7a864c21d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9"}
        """

    /// The same release's settings with no rekey packets, no endpoint and no request.
    static let storedMinimal = """
        {"cluster":"lab","drainSeconds":5,"endpoints":{},"rekeyEverySeconds":86400,"rekeyRequests":{},\
        "reqid":1,"revision":"r"}
        """

    @Test("settings an earlier release stored read back typed, and are written back byte for byte")
    func earlierReleaseSettings() async throws {
        let metadata = Metadata(Self.stored)
        let settings = try #require(try await ControllerSettings.load(from: metadata))
        let midnight = Date(timeIntervalSince1970: 1_767_225_600)
        #expect(
            settings
                == ControllerSettings(
                    cluster: "shop", reqid: 0x4d57,
                    revision: "3f2a9c0d1e5b7a864c21d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9",
                    rekeyEvery: .seconds(5_400) + .milliseconds(250), rekeyPackets: 1_000_000_000,
                    drain: .milliseconds(2_500),
                    endpoints: [
                        "app-1": .namespace("app-1"), "db-1": .agent(host: nil, port: 7443),
                        "db-2": .agent(host: "198.18.1.12", port: 7443),
                        "db-3": .agent(host: "2001:db8::13", port: 8443),
                        "lb-1": .local, "web-1": .sim,
                    ],
                    rekeyRequests: [
                        ChannelID(from: "web-1", to: "app-1", family: .ipv4): midnight,
                        ChannelID(from: "app-1", to: "web-1", family: .ipv6): midnight.addingTimeInterval(3_600),
                    ]))

        metadata.setMetadata(ControllerSettings.metadataKey, nil)
        try await settings.save(to: metadata)
        #expect(metadata.metadata(ControllerSettings.metadataKey) == Self.stored)
    }

    @Test("settings without rekey packets, endpoints or requests read back and are written back byte for byte")
    func minimalSettings() async throws {
        let settings = try ControllerSettings(storedText: Self.storedMinimal)
        #expect(settings.rekeyEvery == .seconds(86_400))
        #expect(settings.drain == .seconds(5))
        #expect(settings.rekeyPackets == nil)
        #expect(try settings.storedText() == Self.storedMinimal)
    }

    @Test(
        "a malformed setting is refused with a message that names it, not read as something else",
        arguments: [
            (#""web-1":"sim""#, #""web-1":"tunnel:web-1""#, "endpoints: node 'web-1' has the endpoint 'tunnel:web-1'"),
            (#""web-1->app-1\/ipv4""#, #""web-1=>app-1\/ipv4""#, "rekeyRequests: 'web-1=>app-1/ipv4' is not a channel"),
            (#""drainSeconds":2.5"#, #""drainSeconds":-1"#, "drainSeconds: -1.0 is not a number of seconds"),
            (#""cluster":"shop","#, "", "`cluster` is missing"),
            (#""reqid":19799"#, #""reqid":"x""#, "reqid: expected UInt32"),
        ])
    func malformed(replacing original: String, with replacement: String, message: String) async throws {
        #expect(Self.stored.contains(original))
        let metadata = Metadata(Self.stored.replacingOccurrences(of: original, with: replacement))
        let error = await #expect(throws: ControllerError.self) { try await ControllerSettings.load(from: metadata) }
        let description = error?.description ?? ""
        #expect(description.contains("(metadata controller.settings) cannot be read: \(message)"), "\(description)")
    }
}
