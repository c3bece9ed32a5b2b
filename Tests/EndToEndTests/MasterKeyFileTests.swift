import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--master-key-file`: the operator's own master key, shared by controllers on one Store, and
/// every way a key file can be wrong, refused by every command that opens the Store.
@Suite("Master key file")
struct MasterKeyFileTests {
    /// A private temporary directory for key files, outside the state directory.
    final class KeyDirectory {
        let path: String

        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-key-\(UUID())").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        /// Writes `bytes` random bytes (mode `mode`) and returns the file's path.
        func key(_ name: String, bytes: Int = 32, mode: Int = 0o600) throws -> String {
            let file = path + "/" + name
            var random = SystemRandomNumberGenerator()
            let data = Data((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &random) })
            #expect(FileManager.default.createFile(atPath: file, contents: data))
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file)
            return file
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Every command that opens the Store, on the minimal example.
    static func storeCommands(_ spec: String) -> [[String]] {
        [
            ["plan", spec], ["apply", spec], ["rekey", spec, "--all"], ["reconcile", spec, "--once"], ["status"],
            ["history"],
        ]
    }

    @Test(
        "apply seals under the operator's key file and creates no master.key; every command opens the Store with it")
    func operatorKeyIsUsed() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let keys = try KeyDirectory()
        let key = try keys.key("cluster.key")
        let spec = MeshwardCLI.example("minimal.yaml")

        let apply = try await cli.run("apply", spec, "--master-key-file", key)
        #expect(apply.status == 0, "\(apply.error)")
        #expect(!FileManager.default.fileExists(atPath: cli.stateDirectory.path + "/master.key"))
        for command in Self.storeCommands(spec) {
            let result = try await cli.run(command + ["--master-key-file", key])
            #expect(result.status == 0, "\(command): \(result.error)")
        }
        let plan = try await cli.run("plan", spec, "--detailed-exitcode", "--master-key-file", key)
        #expect(plan.status == 0, "\(plan.output)\(plan.error)")

        // Without the flag the Store's keys have no key to open them: refused, not re-created.
        let without = try await cli.run("status")
        #expect(without.status == 1)
        #expect(without.error.contains("master.key is missing, but the database holds keys sealed under it"))
        #expect(!FileManager.default.fileExists(atPath: cli.stateDirectory.path + "/master.key"))
    }

    /// One way a key file can be wrong for a Store sealed under another key, and what the
    /// refusal says.
    struct BadKey: CustomTestStringConvertible, Sendable {
        let testDescription: String
        /// Makes the bad key file in the key directory and returns the path to pass.
        let make: @Sendable (KeyDirectory) throws -> String
        /// What the message says, besides the path.
        let says: String

        static let all: [BadKey] = [
            BadKey(testDescription: "missing", make: { $0.path + "/absent.key" }, says: "does not exist"),
            BadKey(
                testDescription: "a path that cannot be read (under a regular file)",
                make: { try $0.key("plain") + "/master.key" }, says: "cannot be read: Not a directory"),
            BadKey(
                testDescription: "16 bytes", make: { try $0.key("short.key", bytes: 16) },
                says: "it holds 16 bytes, a master key is 32"),
            BadKey(
                testDescription: "33 bytes", make: { try $0.key("long.key", bytes: 33) },
                says: "it is longer than 32 bytes"),
            BadKey(
                testDescription: "mode 0644", make: { try $0.key("loose.key", mode: 0o644) },
                says: "has mode 644, which lets other users read or change it; run 'chmod 600"),
            BadKey(
                testDescription: "a directory", make: { $0.path }, says: "it is not a regular file"),
            BadKey(
                testDescription: "another 32-byte key", make: { try $0.key("other.key") },
                says: "does not open the keys in the state database: it is not the key they were sealed under"),
        ]
    }

    @Test("a wrong key file is refused by every command that opens the Store, naming the file", arguments: BadKey.all)
    func badKeyRefused(bad: BadKey) async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let keys = try KeyDirectory()
        let good = try keys.key("cluster.key")
        let spec = MeshwardCLI.example("minimal.yaml")
        #expect(try await cli.run("apply", spec, "--master-key-file", good).status == 0)
        let journal = try await cli.run("history", "--output", "json", "--master-key-file", good).output

        let path = try bad.make(keys)
        for command in Self.storeCommands(spec) {
            let result = try await cli.run(command + ["--master-key-file", path])
            #expect(result.status == 1, "\(command): \(result.output)")
            // The message a person reads (reconcile also logs the failed cycle before it).
            let message = result.error.split(separator: "\n").first { $0.hasPrefix("meshward: error: ") }
            #expect(message?.contains(path) == true, "\(command): \(result.error)")
            #expect(message?.contains(bad.says) == true, "\(command): \(result.error)")
        }
        // Nothing was changed: the right key opens the same Store, with nothing left to do.
        #expect(try await cli.run("history", "--output", "json", "--master-key-file", good).output == journal)
        #expect(try await cli.run("plan", spec, "--detailed-exitcode", "--master-key-file", good).status == 0)
    }

    @Test(
        "a key file this user may not read is refused, naming the file",
        .enabled(if: getuid() != 0, "root reads a file of mode 0000"))
    func unreadableKeyRefused() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let keys = try KeyDirectory()
        let key = try keys.key("cluster.key")
        let spec = MeshwardCLI.example("minimal.yaml")
        #expect(try await cli.run("apply", spec, "--master-key-file", key).status == 0)
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: key)
        let result = try await cli.run("status", "--master-key-file", key)
        #expect(result.status == 1)
        #expect(result.error.contains("master key file \(key) cannot be read: Permission denied"))
    }
}
