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

    /// Returns true once the process has printed `text`, woken by its output as it arrives;
    /// false when it has not within `seconds` (a bound on a hang, not a poll).
    func printed(_ text: String, within seconds: Double) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.collected.wait(for: text) }
            group.addTask {
                try? await Task.sleep(for: .seconds(seconds))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            collected.cancelWaits()
            return first
        }
    }
}

/// Bytes appended from one thread and read from another.
final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var waiters: [(text: String, continuation: CheckedContinuation<Bool, Never>)] = []

    func append(_ more: Data) {
        lock.lock()
        data.append(more)
        let text = String(decoding: data, as: UTF8.self)
        let ready = waiters.filter { text.contains($0.text) }
        waiters.removeAll { text.contains($0.text) }
        lock.unlock()
        for waiter in ready { waiter.continuation.resume(returning: true) }
    }

    /// Returns true once the bytes hold `text` (at once when they do now), false when
    /// `cancelWaits` ends the wait first.
    func wait(for text: String) async -> Bool {
        await withCheckedContinuation { continuation in
            lock.lock()
            if String(decoding: data, as: UTF8.self).contains(text) {
                lock.unlock()
                continuation.resume(returning: true)
                return
            }
            waiters.append((text, continuation))
            lock.unlock()
        }
    }

    /// Ends every wait that has not seen its text, with false.
    func cancelWaits() {
        lock.lock()
        let left = waiters
        waiters = []
        lock.unlock()
        for waiter in left { waiter.continuation.resume(returning: false) }
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
