import Yams

/// A position in a spec file: the file as given, a 1-based line and a 1-based column.
struct SourceLocation: Sendable, Hashable, Comparable, CustomStringConvertible {
    let file: String
    let line: Int
    let column: Int

    init(file: String, line: Int = 1, column: Int = 1) {
        self.file = file
        self.line = line
        self.column = column
    }

    init(file: String, mark: Mark?) {
        self.init(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    /// `path:line:column`, the form messages use to name another place.
    var description: String { "\(file):\(line):\(column)" }

    static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.file, lhs.line, lhs.column) < (rhs.file, rhs.line, rhs.column)
    }
}

/// A value read from a spec, with where it was written.
struct Located<Value> {
    let value: Value
    let location: SourceLocation
}

extension Located: Sendable where Value: Sendable {}
extension Located: Equatable where Value: Equatable {}
