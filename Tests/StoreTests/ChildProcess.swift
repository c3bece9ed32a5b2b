import Foundation
import MeshwardTestSupport

/// A helper executable run by a test, with its standard output collected as it runs.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    private let exit: ProcessExit
    let arguments: [String]
    private let pipe = Pipe()
    private let collected = LockedData()

    struct Exit {
        let arguments: [String]
        let status: Int32
        let output: String
    }

    init(_ executable: String, _ arguments: [String]) throws {
        self.arguments = arguments
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = pipe
        process.standardError = FileHandle.standardError
        let collected = collected
        pipe.fileHandleForReading.readabilityHandler = { handle in
            collected.append(handle.availableData)
        }
        exit = try ProcessExit(launching: process)
    }

    var processIdentifier: Int32 { process.processIdentifier }

    /// Waits for the process to end and returns its status and everything it printed.
    func waitForExit() async -> Exit {
        let status = await exit.status()
        pipe.fileHandleForReading.readabilityHandler = nil
        // Whatever is still in the pipe after the handler stopped.
        collected.append(pipe.fileHandleForReading.readDataToEndOfFile())
        return Exit(arguments: arguments, status: status, output: collected.text)
    }

    /// What the process has printed so far.
    var outputSoFar: String { collected.text }
}

/// Bytes appended from one thread and read from another.
final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    func append(_ more: Data) {
        lock.lock()
        data.append(more)
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
