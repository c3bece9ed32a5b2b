import Yams

extension Node {
    /// The node's resolved tag name (`str`, `int`, `null`...), resolving a plain scalar's tag on first use.
    var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }

    /// True when the node is a scalar that reads as a string: quoted, a block scalar, or plain text
    /// the resolver types as `str`.
    ///
    /// Plain text starting with a letter is a string unless it is one of YAML's boolean or null
    /// words; that case is decided here without the resolver's regular expressions, which
    /// dominate the cost of reading large specs.
    var isStringScalar: Bool {
        guard case .scalar(let scalar) = self else { return false }
        if scalar.style != .plain { return true }
        if let first = scalar.string.utf8.first,
            (first >= 0x61 && first <= 0x7A) || (first >= 0x41 && first <= 0x5A),
            scalar.string.utf8.count > 5 || !Self.typedWords.contains(scalar.string),
            scalar.tag.rawValue.isEmpty || scalar.tag.rawValue == Tag.Name.str.rawValue
        {
            return true
        }
        return tagName == .str
    }

    /// The plain words of YAML 1.1 that resolve to booleans or null.
    private static let typedWords: Set<String> = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL",
    ]
}
