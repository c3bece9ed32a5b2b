/// Text made safe to print on a terminal: every scalar that a terminal would not show as itself
/// (control characters, bidirectional overrides and isolates, zero-width and other format
/// characters, line and paragraph separators) is written as `\u{202E}`, so that a name from an
/// old Store, a spec path or a kernel message can never reorder or hide what is around it.
public enum TerminalText {
    /// `text` with every hidden scalar escaped; printable text (any script) is unchanged.
    public static func escaped(_ text: some StringProtocol) -> String {
        guard text.unicodeScalars.contains(where: isHidden) else { return String(text) }
        var result = ""
        for scalar in text.unicodeScalars {
            if isHidden(scalar) {
                result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// True for a scalar that does not print as itself. A newline or tab is hidden too: callers
    /// escape single fields, and a field never spans lines.
    public static func isHidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned: true
        default: false
        }
    }
}

extension TerminalText {
    /// `text` escaped line by line: newlines between lines stay, everything else hidden is escaped.
    public static func escaped(lines text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { escaped($0) }.joined(separator: "\n")
    }
}
