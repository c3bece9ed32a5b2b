import Synchronization

/// A thread-safe list of lines that `@Sendable` observers write to.
final class Log: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    var entries: [String] { lines.withLock { $0 } }
}
