/// One problem found in a spec, located at a line and column of a file.
///
/// `description` is the form every command prints: `path:line:column: message` for an error and
/// `path:line:column: warning: message` for a warning. Lines and columns count from 1; a problem
/// that concerns a whole file (not found, empty) is placed at 1:1.
public struct Diagnostic: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    /// How serious a problem is.
    public enum Severity: String, Sendable, Hashable, Codable {
        /// The spec is invalid: nothing is compiled and nothing may be applied.
        case error
        /// The spec is valid but probably not what was meant (a selector that matches no node).
        case warning
    }

    /// Whether this is an error or a warning.
    public let severity: Severity
    /// The path of the file, as it was given (or found in a given directory).
    public let file: String
    /// The line, from 1.
    public let line: Int
    /// The column, from 1, counted in Unicode scalars.
    public let column: Int
    /// What is wrong and, where it helps, what to do about it.
    public let message: String

    /// Creates a diagnostic.
    public init(severity: Severity, file: String, line: Int, column: Int, message: String) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    init(_ severity: Severity, at location: SourceLocation, _ message: String) {
        self.init(
            severity: severity, file: location.file, line: location.line, column: location.column,
            message: message)
    }

    /// `path:line:column: message`, with `warning: ` before the message of a warning.
    public var description: String {
        let prefix = "\(file):\(line):\(column): "
        return severity == .warning ? prefix + "warning: " + message : prefix + message
    }

    /// Orders by file, then line, then column, then message.
    public static func < (lhs: Diagnostic, rhs: Diagnostic) -> Bool {
        (lhs.file, lhs.line, lhs.column, lhs.message) < (rhs.file, rhs.line, rhs.column, rhs.message)
    }
}
