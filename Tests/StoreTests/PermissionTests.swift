import Foundation
import MeshwardCore
import Testing

@testable import Store

@Suite("State directory permissions")
struct PermissionTests {
    @Test("a new state directory is 0700 with 0600 files")
    func createdPrivate() async throws {
        let test = try TestStore(.onDisk)
        _ = try await test.store.issue(channel("a", "b"))
        #expect(try mode(test.stateDirectory) == 0o700)
        #expect(try mode(test.stateDirectory + "/state.sqlite") == 0o600)
        #expect(try mode(test.stateDirectory + "/master.key") == 0o600)
        #expect(try mode(test.stateDirectory + "/state.sqlite-wal") == 0o600)
        #expect(try Data(contentsOf: URL(fileURLWithPath: test.stateDirectory + "/master.key")).count == 32)
        #expect(test.store.directory == test.stateDirectory)
    }

    @Test("files stay private under a permissive umask")
    func permissiveUmask() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let previous = umask(0)
        defer { umask(previous) }
        let store = try StateStore.open(directory: directory + "/state", logger: testLogger)
        _ = try await store.issue(channel("a", "b"))
        #expect(try mode(directory + "/state") == 0o700)
        #expect(try mode(directory + "/state/state.sqlite") == 0o600)
        #expect(try mode(directory + "/state/master.key") == 0o600)
    }

    struct Loosened: CustomTestStringConvertible, Sendable {
        let file: String
        let mode: Int
        let fix: String
        var testDescription: String { "\(file.isEmpty ? "directory" : file) \(String(mode, radix: 8))" }
    }

    @Test(
        "looser permissions are refused with the chmod that fixes them",
        arguments: [
            Loosened(file: "", mode: 0o755, fix: "chmod 700"),
            Loosened(file: "", mode: 0o701, fix: "chmod 700"),
            Loosened(file: "state.sqlite", mode: 0o644, fix: "chmod 600"),
            Loosened(file: "state.sqlite", mode: 0o660, fix: "chmod 600"),
            Loosened(file: "master.key", mode: 0o604, fix: "chmod 600"),
        ])
    func looserRefused(loosened: Loosened) async throws {
        let test = try TestStore(.onDisk)
        _ = try await test.store.issue(channel("a", "b"))
        let path = loosened.file.isEmpty ? test.stateDirectory : test.stateDirectory + "/" + loosened.file
        #expect(chmod(path, mode_t(loosened.mode)) == 0)

        let error = #expect(throws: StoreError.self) {
            try StateStore.open(directory: test.stateDirectory, logger: testLogger)
        }
        guard case .insecurePermissions(let reported, let reportedMode, let fix) = error else {
            Issue.record("expected insecurePermissions, got \(String(describing: error))")
            return
        }
        #expect(reported == path)
        #expect(Int(reportedMode) == loosened.mode)
        #expect(fix == "\(loosened.fix) \(path)")
        #expect(error?.description.contains("run '\(loosened.fix) \(path)'") == true)

        // After the fix it opens again.
        #expect(chmod(path, loosened.file.isEmpty ? 0o700 : 0o600) == 0)
        _ = try StateStore.open(directory: test.stateDirectory, logger: testLogger)
    }

    @Test("an operator-named master key file with loose permissions is refused")
    func externalKeyChecked() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keyPath = directory + "/operator.key"
        _ = FileManager.default.createFile(
            atPath: keyPath, contents: Data(try SecureRandom.bytes(count: 32)), attributes: [.posixPermissions: 0o644])
        #expect(throws: StoreError.self) {
            try StateStore.open(directory: directory + "/state", masterKeyPath: keyPath, logger: testLogger)
        }
        #expect(chmod(keyPath, 0o600) == 0)
        let store = try StateStore.open(directory: directory + "/state", masterKeyPath: keyPath, logger: testLogger)
        _ = try await store.issue(channel("a", "b"))
        #expect(!FileManager.default.fileExists(atPath: directory + "/state/master.key"))
    }

    @Test("a damaged database is refused as corrupt")
    func corruptDatabase() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(mkdir(directory + "/state", 0o700) == 0)
        let path = directory + "/state/state.sqlite"
        _ = FileManager.default.createFile(
            atPath: path, contents: Data(repeating: 0x5a, count: 8192), attributes: [.posixPermissions: 0o600])
        let error = #expect(throws: StoreError.self) {
            try StateStore.open(directory: directory + "/state", logger: testLogger)
        }
        guard case .corrupt(let reported, _) = error else {
            Issue.record("expected corrupt, got \(String(describing: error))")
            return
        }
        #expect(reported == path)
    }
}
