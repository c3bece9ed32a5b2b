import Foundation
import MeshwardTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A `meshward` (or `meshward-faulty`) command left running while a test goes on, its
/// standard output and error in files that the test reads as it runs.
final class BackgroundCommand {
    let process = Process()
    private let exit: ProcessExit
    let output: URL
    let log: URL
    private let handles: [FileHandle]

    /// Starts `executable` with `arguments` after `--state-dir` and the Store's arguments of `cli`.
    init(
        _ cli: MeshwardCLI, _ arguments: [String], executable: URL = MeshwardCLI.binary,
        environment: [String: String] = [:]
    ) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-bg-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        output = directory.appendingPathComponent("stdout")
        log = directory.appendingPathComponent("stderr")
        try Data().write(to: output)
        try Data().write(to: log)
        let out = try FileHandle(forWritingTo: output)
        let err = try FileHandle(forWritingTo: log)
        handles = [out, err]
        process.executableURL = executable
        process.arguments = arguments + ["--state-dir", cli.stateDirectory.path] + cli.storeArguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = out
        process.standardError = err
        exit = try ProcessExit(launching: process)
    }

    var pid: Int32 { process.processIdentifier }

    /// What it wrote to standard error so far.
    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// What it wrote to standard output so far.
    var outputText: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

    /// Sends `signal` while it runs.
    func send(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Waits for it to exit and returns its status, or nil when it still runs after `seconds`.
    func waitForExit(seconds: Double = 60) async throws -> Int32? {
        await exit.status(within: seconds)
    }

    /// Kills it if it still runs, without waiting: after SIGKILL it does nothing more.
    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for handle in handles { try? handle.close() }
        try? FileManager.default.removeItem(at: output.deletingLastPathComponent())
    }
}

/// Polls `condition` every 200 ms until it holds or `seconds` have passed (a bound on a test
/// that would otherwise hang, never a figure the test asserts on); returns whether it held.
func eventually(seconds: Double = 60, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if (try? await condition()) == true { return true }
        try await Task.sleep(for: .milliseconds(200))
    }
    return try await condition()
}
