import Foundation
import Kernel

/// Throws when any operation of `results` was not applied, naming the first.
func requireApplied(_ results: [OperationResult]) throws {
    if let failure = results.first(where: { !$0.outcome.isApplied }) {
        throw BenchFailure("\(failure.operation): \(failure.outcome)")
    }
}

/// A network namespace made for one measurement (`mwbench-<random>`), deleted afterwards.
struct BenchNamespace {
    let name: String
    let ipPath: String

    init(ipPath: String) throws {
        self.ipPath = ipPath
        self.name = "mwbench-\(UInt32.random(in: 0...UInt32.max))"
        try Self.run(ipPath, ["netns", "add", name], captureOutput: false)
    }

    func delete() {
        _ = try? Self.run(ipPath, ["netns", "del", name], captureOutput: false)
    }

    @discardableResult
    func ip(_ arguments: [String], captureOutput: Bool = false) throws -> String {
        try Self.run(ipPath, ["-n", name] + arguments, captureOutput: captureOutput)
    }

    func writeBatch(_ lines: [String]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString).batch")
            .path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], captureOutput: Bool) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = captureOutput ? output : FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let data = captureOutput ? output.fileHandleForReading.readDataToEndOfFile() : Data()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchFailure(
                "\(executable) \(arguments.prefix(6).joined(separator: " ")) exited \(process.terminationStatus): "
                    + String(decoding: errorData.prefix(300), as: UTF8.self))
        }
        return String(decoding: data, as: UTF8.self)
    }
}
