import Foundation
import Logging
import MeshwardCore
import Testing

@testable import Store

/// Where a SQLite-specific test's store lives (the role tests run on `StoreConformer.all`).
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case inMemory = "in-memory"
    case onDisk = "on-disk"

    var testDescription: String { rawValue }
}

/// A store for one test, with the temporary directory it lives in (removed when released).
final class TestStore: Sendable {
    let store: StateStore
    /// The temporary directory; the state directory is `directory + "/state"` for on-disk stores.
    let directory: String

    init(_ kind: StoreKind, spiRange: ClosedRange<UInt32> = StateStore.defaultSPIRange) throws {
        directory = try makeTemporaryDirectory()
        switch kind {
        case .inMemory:
            store = try StateStore.inMemory(
                masterKey: try KeyMaterial.random(count: 32), logger: testLogger, spiRange: spiRange)
        case .onDisk:
            store = try StateStore.open(
                directory: directory + "/state", masterKeyPath: nil, logger: testLogger, spiRange: spiRange)
        }
    }

    var stateDirectory: String { directory + "/state" }

    deinit { try? FileManager.default.removeItem(atPath: directory) }
}

let testLogger = Logger(label: "meshward.store.tests") { _ in SwiftLogNoOpLogHandler() }

/// A fresh private directory under the system's temporary directory.
func makeTemporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.path + "/meshward-store-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The permission bits of a file.
func mode(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

func address(_ text: String) -> IPAddress {
    guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
    return address
}

func channel(_ from: String, _ to: String, _ family: AddressFamily = .ipv4) -> ChannelID {
    ChannelID(from: from, to: to, family: family)
}

let t0 = Date(timeIntervalSinceReferenceDate: 800_000_000.25)

/// Where the helper executables the tests run were built: beside the test bundle.
func builtProduct(_ name: String) -> String? {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    for _ in 0..<5 {
        directory.deleteLastPathComponent()
        let candidate = directory.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}
