import DesiredState
import Foundation
import Logging
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
