import Foundation

/// A child process run to its end: its status and what it wrote. For tests and benchmarks only.
public struct ProcessRun: Sendable {
    /// Its exit code, or the number of the signal that ended it.
    public let status: Int32
    /// What it wrote to standard output.
    public let output: String
    /// What it wrote to standard error.
    public let error: String

    public init(status: Int32, output: String, error: String) {
        self.status = status
        self.output = output
        self.error = error
    }

    /// Runs `executable` to its end, awaited without holding a thread (`ProcessExit`).
    ///
    /// Output goes to files, not pipes: a command that fills one pipe while the other is being
    /// read to its end would wait forever (trace logging writes far more than a pipe buffer to
    /// stderr), and reading a pipe to its end blocks the reading thread.
    ///
    /// - Parameters:
    ///   - environment: the whole environment; nil inherits this process's.
    ///   - directory: the working directory; nil inherits this process's.
    public init(
        running executable: URL, _ arguments: [String], environment: [String: String]? = nil, directory: URL? = nil
    ) async throws {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = directory }
        let capture = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: capture, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: capture) }
        let outputURL = capture.appendingPathComponent("stdout")
        let errorURL = capture.appendingPathComponent("stderr")
        try Data().write(to: outputURL)
        try Data().write(to: errorURL)
        let output = try FileHandle(forWritingTo: outputURL)
        let error = try FileHandle(forWritingTo: errorURL)
        defer {
            try? output.close()
            try? error.close()
        }
        process.standardOutput = output
        process.standardError = error
        let status = try await ProcessExit(launching: process).status()
        self.init(
            status: status, output: String(decoding: try Data(contentsOf: outputURL), as: UTF8.self),
            error: String(decoding: try Data(contentsOf: errorURL), as: UTF8.self))
    }
}
