import Foundation
import Logging

/// A `LogHandler` that writes one line per message to a stream, as `LogFormat` says. Metadata
/// keys are written sorted, so two runs log the same line for the same event.
///
/// It writes what it is given: keys stay out of logs because no caller passes one (they never
/// print: `KeyMaterial`'s description is redacted), not because this handler filters.
public struct LineLogHandler: LogHandler {
    /// Where lines go; a test can collect them.
    public typealias Sink = @Sendable (String) -> Void

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    private let label: String
    private let format: LogFormat
    /// Under journald: text lines carry no timestamp (the journal records the time) and start
    /// with the syslog priority (`<6>` for info), which journald reads as the entry's priority.
    private let journal: Bool
    private let sink: Sink
    private let now: @Sendable () -> Date

    /// - Parameters:
    ///   - journal: leave the time out of text lines, as journald stamps each line itself.
    ///   - now: the clock for the `time` member and text timestamps.
    public init(
        label: String, format: LogFormat, journal: Bool = false, now: @escaping @Sendable () -> Date = { Date() },
        sink: @escaping Sink = LineLogHandler.standardError
    ) {
        self.label = label
        self.format = format
        self.journal = journal
        self.sink = sink
        self.now = now
    }

    /// Writes a line (with its newline) to standard error in one call.
    public static let standardError: Sink = { line in
        FileHandle.standardError.write(Data(line.utf8))
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        sink(line(level: event.level, message: "\(event.message)", metadata: merged, time: now()) + "\n")
    }

    /// The line for one event, without its newline.
    func line(level: Logger.Level, message: String, metadata: Logger.Metadata, time: Date) -> String {
        switch format {
        case .json:
            var object: [String: Any] = [:]
            for (key, value) in metadata { object[key] = Self.json(value) }
            object["time"] = Self.timestamp(time)
            object["level"] = level.rawValue
            object["label"] = label
            object["message"] = message
            guard
                let data = try? JSONSerialization.data(
                    withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            else {
                return #"{"level":"error","message":"a log line could not be encoded"}"#
            }
            return String(decoding: data, as: UTF8.self)
        case .text:
            let fields = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.text($0.value))" }
            let head =
                journal
                ? "<\(Self.priority(level))>\(level.rawValue) \(label):"
                : "\(Self.timestamp(time)) \(level.rawValue) \(label):"
            return ([head, Self.escaped(message)] + fields).joined(separator: " ")
        }
    }

    /// The syslog priority of `level` (sd-daemon(3)): debug 7 … critical 2.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    private static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(json)
        case .dictionary(let values): values.mapValues(json)
        }
    }

    private static func text(_ value: Logger.Metadata.Value) -> String {
        let plain: String
        switch value {
        case .string(let text): plain = text
        case .stringConvertible(let convertible): plain = convertible.description
        case .array, .dictionary: plain = value.description
        }
        let escaped = escaped(plain)
        return escaped.contains(" ") || escaped.isEmpty
            ? "\"\(escaped.replacingOccurrences(of: "\"", with: "\\\""))\"" : escaped
    }

    /// One line stays one line: newlines and other control characters are written as escapes.
    private static func escaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                result += "\\u{\(String(scalar.value, radix: 16))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    private static func timestamp(_ date: Date) -> String {
        date.formatted(
            .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}
