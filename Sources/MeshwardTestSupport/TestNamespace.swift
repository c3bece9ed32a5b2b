import Foundation

/// A network namespace created for one test (`mwtest-<random>`) and deleted afterwards, with
/// `ip` run in it: the kernel tests' nodes, and the controller tests' `netns:` nodes.
public struct TestNamespace: Sendable {
    public let name: String

    public init(name: String) {
        self.name = name
    }

    /// Whether this process may create network namespaces (root, `ip` present), found once.
    private static let permission = Task<Bool, Never> {
        guard let namespace = try? await TestNamespace.create() else { return false }
        await namespace.delete()
        return true
    }

    /// True when this process may create network namespaces (root, `ip` present).
    public static func isPermitted() async -> Bool { await permission.value }

    /// Creates `mwtest-<random>`.
    public static func create() async throws -> TestNamespace {
        let name = "mwtest-\(UInt32.random(in: 0...UInt32.max))"
        _ = try await run(["netns", "add", name])
        return TestNamespace(name: name)
    }

    /// Runs `body` with a fresh namespace, deleting it afterwards whatever happens.
    public static func with<T>(_ body: (TestNamespace) async throws -> T) async throws -> T {
        let namespace = try await create()
        do {
            let value = try await body(namespace)
            await namespace.delete()
            return value
        } catch {
            await namespace.delete()
            throw error
        }
    }

    public func delete() async {
        _ = try? await Self.run(["netns", "del", name])
    }

    /// `ip -n NAME ARGS...`; throws with stderr when it fails.
    @discardableResult
    public func ip(_ arguments: String...) async throws -> String {
        try await ip(arguments)
    }

    /// `ip -n NAME ARGS...`; throws with stderr when it fails.
    @discardableResult
    public func ip(_ arguments: [String]) async throws -> String {
        try await Self.run(["-n", name] + arguments)
    }

    /// `ip -n NAME -batch FILE`.
    public func ipBatch(_ lines: [String]) async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-batch-\(UUID().uuidString)")
        try lines.joined(separator: "\n").appending("\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        try await Self.run(["-n", name, "-batch", file.path])
    }

    /// The namespace's `/proc/net/xfrm_stat`, read from inside it.
    public func statisticsText() async throws -> String {
        try await Self.execute("/usr/sbin/ip", ["netns", "exec", name, "cat", "/proc/net/xfrm_stat"])
    }

    /// `ip ARGS...`; throws with stderr when it fails.
    @discardableResult
    public static func run(_ arguments: [String]) async throws -> String {
        try await execute("/usr/sbin/ip", arguments)
    }

    /// A command that exited non-zero, with what it wrote.
    public struct CommandFailed: Error, CustomStringConvertible {
        public var command: String
        public var status: Int32
        public var output: String
        public var description: String { "\(command) exited \(status): \(output)" }

        public init(command: String, status: Int32, output: String) {
            self.command = command
            self.status = status
            self.output = output
        }
    }

    /// Runs `executable` to its end; throws `CommandFailed` when it exits non-zero.
    public static func execute(_ executable: String, _ arguments: [String]) async throws -> String {
        let run = try await ProcessRun(running: URL(fileURLWithPath: executable), arguments)
        guard run.status == 0 else {
            throw CommandFailed(
                command: ([executable] + arguments).joined(separator: " "), status: run.status,
                output: run.output + run.error)
        }
        return run.output
    }
}
