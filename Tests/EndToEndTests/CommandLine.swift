import Foundation
import MeshwardTestSupport

/// Runs the built `meshward` binary as an operator would, with its own state directory.
struct MeshwardCLI {
    typealias Result = ProcessRun

    /// The repository root, for the example specs.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The binary next to the test bundle, or the one `MESHWARD_TEST_BINARY` names (to run the
    /// suites against another build, e.g. to check that a new test fails on the code before a fix).
    static let binary = built("meshward")

    /// `meshward-faulty`, the same commands with the test kit's crash fault armed from the
    /// environment, from the same build as `binary`.
    static let faultyBinary = binary.deletingLastPathComponent().appendingPathComponent("meshward-faulty")

    private static func built(_ name: String) -> URL {
        if let path = ProcessInfo.processInfo.environment["MESHWARD_TEST_BINARY"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundle, bundle.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return root.appendingPathComponent(".build/debug/\(name)")
    }

    let stateDirectory: URL
    /// Given to every command after the state directory: `--store URL --master-key-file FILE`
    /// for a Store on PostgreSQL (`TestDatabase`); empty for SQLite in the state directory.
    var storeArguments: [String] = []

    init() throws {
        stateDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("meshward-e2e-\(UUID().uuidString)")
    }

    /// The same, on the Store `database` names (nil: SQLite in the state directory).
    init(database: TestDatabase?) throws {
        try self.init()
        storeArguments = database?.arguments ?? []
    }

    static func example(_ name: String) -> String { root.appendingPathComponent("specs/examples/\(name)").path }

    @discardableResult
    func run(_ arguments: String..., environment: [String: String] = [:]) async throws -> Result {
        try await run(arguments, environment: environment)
    }

    func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> Result {
        try await Self.capture(
            Self.binary, arguments + ["--state-dir", stateDirectory.path] + storeArguments,
            environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
    }

    /// Runs `meshward-faulty`: `meshward` that dies where `crashAfter` says
    /// (`MESHWARD_SIMULATED_CRASH_AFTER`: `0`, `N` or `refused:N`).
    func runCrashing(_ arguments: [String], crashAfter: String) async throws -> Result {
        try await Self.capture(
            Self.faultyBinary, arguments + ["--state-dir", stateDirectory.path] + storeArguments,
            environment: ProcessInfo.processInfo.environment.merging(["MESHWARD_SIMULATED_CRASH_AFTER": crashAfter]) {
                $1
            })
    }

    /// Runs `executable` to its end and returns its status and what it wrote (`ProcessRun`:
    /// output in files, the end awaited without holding a thread).
    static func capture(
        _ executable: URL, _ arguments: [String], environment: [String: String]? = nil, directory: URL? = nil
    ) async throws -> Result {
        try await ProcessRun(running: executable, arguments, environment: environment, directory: directory)
    }

    func json(_ arguments: String...) async throws -> (Int32, [String: Any]) {
        let result = try await run(arguments + ["--output", "json"])
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] ?? [:]
        return (result.status, object)
    }

    func removeState() { try? FileManager.default.removeItem(at: stateDirectory) }

    /// Writes a spec into a fresh temporary directory and returns its path.
    static func writeSpec(_ text: String, name: String = "fleet.yaml") throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "meshward-spec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent(name)
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }
}
