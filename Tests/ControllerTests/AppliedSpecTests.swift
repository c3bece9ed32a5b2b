import DesiredState
import Foundation
import Logging
import MeshwardCore
import Store
import Testing

@testable import Controller

/// The spec the last untargeted `apply` recorded, as `plan --refresh=false` reads it back.
@Suite("Applied spec")
struct AppliedSpecTests {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static func spec(port: String) throws -> FleetIntent {
        let text = """
            version: 1
            cluster: recorded
            nodes:
              - { name: alpha, addresses: [198.18.11.1] }
              - { name: beta, addresses: [198.18.11.2] }
            flows:
              - { name: ab, from: { name: alpha }, to: { name: beta }, ports: [\(port)] }

            """
        let result = SpecLoader().load(sources: [SpecSource(path: "fleet.yaml", text: text)])
        return try #require(result.intent, "\(result.errors)")
    }

    func temporaryStore() throws -> (any ControllerStore, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-applied-\(UUID())")
        return (try StateStore.open(directory: directory.path, logger: logger), directory)
    }

    @Test("a plan of the recorded revision gets its own spec back without the record being decoded")
    func sameRevisionIsNotDecoded() async throws {
        let (store, directory) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let applied = try Self.spec(port: "tcp/8080")
        try await AppliedSpec.record(applied, in: store)
        #expect(try await AppliedSpec.load(from: store, reusing: applied)?.revision == applied.revision)

        // The record no longer decodes: the same revision still answers (nothing is decoded),
        // another spec's plan is refused with the reason.
        try await store.setMetadata(AppliedSpec.metadataKey, "not json")
        #expect(try await AppliedSpec.load(from: store, reusing: applied)?.revision == applied.revision)
        let other = try Self.spec(port: "tcp/9090")
        await #expect {
            _ = try await AppliedSpec.load(from: store, reusing: other)
        } throws: { error in
            guard case ControllerError.unreadableAppliedSpec(let reason) = error else { return false }
            return reason.contains("it is not a recorded spec")
        }
    }

    @Test("a plan of another revision compiles the recorded spec: the applied one, not the plan's")
    func otherRevisionCompilesTheRecord() async throws {
        let (store, directory) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let applied = try Self.spec(port: "tcp/8080")
        try await AppliedSpec.record(applied, in: store)
        let other = try Self.spec(port: "tcp/9090")
        let loaded = try await AppliedSpec.load(from: store, reusing: other)
        #expect(loaded?.revision == applied.revision)
        #expect(loaded?.channels == applied.channels)
    }

    @Test("nothing recorded: no spec, whatever the plan's")
    func nothingRecorded() async throws {
        let (store, directory) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try await AppliedSpec.load(from: store, reusing: try Self.spec(port: "tcp/8080")) == nil)
    }
}

/// Counting the spec's channels the Store holds, in runs on every core at fleet scale.
@Suite("Recorded channel count")
struct RecordedCountTests {
    @Test(
        "counted in runs of 10 channels it is the count of one run: every third channel recorded, and a record the spec lacks"
    )
    func runsCountAsOne() throws {
        var nodes = ""
        for index in 0..<12 { nodes += "  - { name: n\(index), addresses: [198.18.12.\(index + 1)] }\n" }
        let text = """
            version: 1
            cluster: counted
            nodes:
            \(nodes)flows:
              - { name: mesh, from: {}, to: {} }

            """
        let result = SpecLoader().load(sources: [SpecSource(path: "fleet.yaml", text: text)])
        let intent = try #require(result.intent, "\(result.errors)")
        #expect(intent.channels.count > 100)
        var records: [ChannelID: ChannelRecord] = [:]
        for (index, channel) in intent.channels.enumerated() where index.isMultiple(of: 3) {
            records[channel.id] = ChannelRecord(
                id: channel.id, step: .established, stepChangedAt: Date(), generations: [])
        }
        let gone = ChannelID(from: "gone", to: "n1", family: .ipv4)
        records[gone] = ChannelRecord(id: gone, step: .established, stepChangedAt: Date(), generations: [])
        let expected = (intent.channels.count + 2) / 3
        #expect(RemovalCount.recordedCount(of: intent, in: records, minimumRun: 10) == expected)
        #expect(RemovalCount.recordedCount(of: intent, in: records) == expected)
        #expect(RemovalCount.unnamed(records, in: intent) == [gone])
    }
}
