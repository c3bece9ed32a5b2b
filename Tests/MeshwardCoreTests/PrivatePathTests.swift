import Foundation
import MeshwardCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The permission rule the state directory and the agent directory share.
@Suite("private paths")
struct PrivatePathTests {
    static func scratch() -> String { NSTemporaryDirectory() + "meshward-private-\(UUID().uuidString)" }

    @Test("a missing directory is created 0700; an existing private one is accepted as it is")
    func createsMissingDirectory() throws {
        let path = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PrivatePath.prepareDirectory(path, use: "use as the test directory")
        #expect(try PrivatePath.modeIfExists(of: path).map { $0 & 0o7777 } == 0o700)
        try PrivatePath.prepareDirectory(path, use: "use as the test directory")
    }

    @Test(
        "a directory group or others may access is refused with its mode and the chmod that fixes it, and left as it is",
        arguments: [mode_t(0o750), 0o705, 0o777])
    func refusesLooseDirectory(mode: mode_t) throws {
        let path = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PrivatePath.prepareDirectory(path, use: "use as the test directory")
        #expect(chmod(path, mode) == 0)
        #expect(throws: PrivatePath.Problem.insecurePermissions(mode: UInt32(mode), fix: "chmod 700 \(path)")) {
            try PrivatePath.prepareDirectory(path, use: "use as the test directory")
        }
        #expect(try PrivatePath.modeIfExists(of: path).map { $0 & 0o7777 } == mode)
    }

    @Test("a file where the directory should be is refused as not a directory, naming what it was to be used as")
    func refusesFile() throws {
        let path = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(), attributes: [.posixPermissions: 0o600]))
        #expect(throws: PrivatePath.Problem.fileSystem(operation: "use as the test directory", errno: ENOTDIR)) {
            try PrivatePath.prepareDirectory(path, use: "use as the test directory")
        }
    }

    @Test("a missing path has no mode; a file of mode 0600 is private and one of 0640 is not")
    func fileModes() throws {
        let path = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try PrivatePath.modeIfExists(of: path) == nil)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(), attributes: [.posixPermissions: 0o600]))
        let mode = try #require(try PrivatePath.modeIfExists(of: path))
        try PrivatePath.requirePrivate(mode: mode, fix: "chmod 600 \(path)")
        #expect(throws: PrivatePath.Problem.insecurePermissions(mode: 0o640, fix: "chmod 600 \(path)")) {
            try PrivatePath.requirePrivate(mode: S_IFREG | 0o640, fix: "chmod 600 \(path)")
        }
    }
}
