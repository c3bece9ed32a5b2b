import Logging
import Synchronization

@testable import ReconcilerTestSupport

/// Keeps every line logged, as `message key=value ...`, for a test to read.
struct CollectingLogHandler: LogHandler {
    final class Lines: Sendable {
        private let lines = Mutex<[String]>([])
        private let events: LoopEvents?

        init(events: LoopEvents? = nil) {
            self.events = events
        }

        var all: [String] { lines.withLock { $0 } }

        func contains(_ text: String) -> Bool { lines.withLock { $0.contains { $0.contains(text) } } }

        func append(_ line: String) {
            lines.withLock { $0.append(line) }
            events?.changed()
        }
    }

    let lines: Lines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = (event.metadata ?? [:]).merging(metadata) { line, _ in line }
            .sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        lines.append(([event.level.rawValue, "\(event.message)"] + fields).joined(separator: " "))
    }
}
