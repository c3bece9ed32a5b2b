import Foundation
import Logging
import Synchronization
import Telemetry
import Testing

@Suite("Log formats")
struct LineLogHandlerTests {
    /// Lines a handler wrote.
    final class Lines: Sendable {
        private let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
        func append(_ line: String) { lines.withLock { $0.append(line) } }
    }

    static let time = Date(timeIntervalSince1970: 1_800_000_000.25)

    static func logger(_ format: LogFormat, journal: Bool = false, into lines: Lines) -> Logger {
        var logger = Logger(label: "meshward") { label in
            LineLogHandler(label: label, format: format, journal: journal, now: { time }, sink: lines.append)
        }
        logger.logLevel = .debug
        return logger
    }

    @Test("json: one object per line with time, level, label, message and the metadata as members")
    func json() throws {
        let lines = Lines()
        let logger = Self.logger(.json, into: lines)
        logger.notice("cycle done", metadata: ["outcome": "converged", "passes": "2", "nested": ["a": "b"]])
        logger.warning("kernel refused\nsecond line", metadata: ["node": "beta"])
        #expect(lines.all.count == 2)
        for line in lines.all {
            #expect(line.hasSuffix("}\n"))
            #expect(line.dropLast().contains("\n") == false, "a message's newline split the line: \(line)")
        }
        let first = try #require(
            try JSONSerialization.jsonObject(with: Data(lines.all[0].utf8)) as? [String: Any])
        #expect(first["level"] as? String == "notice")
        #expect(first["message"] as? String == "cycle done")
        #expect(first["label"] as? String == "meshward")
        #expect(first["time"] as? String == "2027-01-15T08:00:00.250Z")
        #expect(first["outcome"] as? String == "converged")
        #expect((first["nested"] as? [String: Any])?["a"] as? String == "b")
        let second = try #require(
            try JSONSerialization.jsonObject(with: Data(lines.all[1].utf8)) as? [String: Any])
        #expect(second["message"] as? String == "kernel refused\nsecond line")
    }

    @Test(
        "text: time, level, label, message, then the metadata sorted as key=value; under journald the priority instead of the time"
    )
    func text() {
        let lines = Lines()
        Self.logger(.text, into: lines).info("applied", metadata: ["sa.spi": "0x1234", "node": "alpha beta"])
        Self.logger(.text, journal: true, into: lines).info("applied\nagain", metadata: ["node": "alpha"])
        #expect(
            lines.all == [
                "2027-01-15T08:00:00.250Z info meshward: applied node=\"alpha beta\" sa.spi=0x1234\n",
                "<6>info meshward: applied\\nagain node=alpha\n",
            ])
    }
}
