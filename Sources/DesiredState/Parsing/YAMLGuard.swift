import Yams

/// Bounds the work a spec file can cause before and after Yams composes it.
///
/// Before composing, a lexical scan refuses nesting deeper than `maximumDepth` (Yams composes
/// recursively) and aliases used as mapping keys (Yams hashes keys whole, so an alias to an
/// expanded structure would cost exponential time). After composing, `checkExpansion` walks the
/// tree as the parser will see it, aliases expanded, and stops at `nodeBudget` nodes: a
/// "billion laughs" document is refused with a located error in bounded time and memory.
enum YAMLGuard {
    /// The largest spec file read, in bytes.
    static let maximumFileSize = 16 << 20
    /// The deepest nesting of collections accepted.
    static let maximumDepth = 64

    /// A refusal, with where the scan stopped.
    struct Refusal: Error {
        let line: Int
        let column: Int
        let message: String
    }

    /// Scans `text` for structures the composer must not see.
    static func scan(_ text: String) -> Refusal? {
        var line = 1
        var column = 0
        var flowDepth = 0
        var dashRun = 0
        var atLineStart = true
        var quote: UInt8? = nil
        var inComment = false
        var previous: UInt8 = 0x0A
        var bytes = Array(text.utf8)
        bytes.append(0x0A)
        var index = 0
        while index < bytes.count - 1 {
            let byte = bytes[index]
            let next = bytes[index + 1]
            if byte & 0xC0 != 0x80 { column += 1 }
            defer {
                previous = byte
                index += 1
            }
            if byte == 0x0A {
                line += 1
                column = 0
                inComment = false
                atLineStart = true
                dashRun = 0
                continue
            }
            if inComment { continue }
            if let open = quote {
                if open == UInt8(ascii: "\""), byte == UInt8(ascii: "\\") {
                    index += 1
                    column += 1
                } else if byte == open {
                    if open == UInt8(ascii: "'"), next == open {
                        index += 1
                        column += 1
                    } else {
                        quote = nil
                    }
                }
                continue
            }
            let tokenStart = isSpace(previous) || previous == UInt8(ascii: "[") || previous == UInt8(ascii: "{")
                || previous == UInt8(ascii: ",")
            if byte == UInt8(ascii: "#"), isSpace(previous) {
                inComment = true
            } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\""), tokenStart {
                quote = byte
            } else if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{"), tokenStart {
                flowDepth += 1
            } else if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
                flowDepth = max(0, flowDepth - 1)
            } else if byte == UInt8(ascii: "-"), atLineStart, isSpace(next) {
                dashRun += 1
            } else if byte == UInt8(ascii: "?"), tokenStart, isSpace(next) {
                var probe = index + 1
                while probe < bytes.count - 1, bytes[probe] == 0x20 || bytes[probe] == 0x09 { probe += 1 }
                if bytes[probe] == UInt8(ascii: "*") {
                    return Refusal(line: line, column: column, message: aliasKeyMessage)
                }
            } else if byte == UInt8(ascii: "*"), tokenStart {
                var probe = index + 1
                while probe < bytes.count - 1, !isSpace(bytes[probe]), !isFlowIndicator(bytes[probe]) { probe += 1 }
                while probe < bytes.count - 1, bytes[probe] == 0x20 || bytes[probe] == 0x09 { probe += 1 }
                if bytes[probe] == UInt8(ascii: ":"), probe + 1 < bytes.count, isSpace(bytes[probe + 1]) {
                    return Refusal(line: line, column: column, message: aliasKeyMessage)
                }
            }
            if !isSpace(byte), !(byte == UInt8(ascii: "-") && atLineStart) { atLineStart = false }
            if flowDepth + dashRun > maximumDepth {
                return Refusal(line: line, column: column,
                               message: "collections are nested more than \(maximumDepth) levels deep; "
                                   + "a spec needs only a few levels")
            }
        }
        return nil
    }

    private static let aliasKeyMessage = "an alias may not be used as a mapping key; write the key out"

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

    private static func isFlowIndicator(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: ",") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]")
            || byte == UInt8(ascii: "{") || byte == UInt8(ascii: "}")
    }

    /// The number of nodes a document of `byteCount` bytes may expand to through aliases.
    static func nodeBudget(byteCount: Int) -> Int { max(1_000_000, 4 * byteCount) }

    /// Walks `root` with aliases expanded; a refusal at the node where the budget ran out.
    static func checkExpansion(_ root: Node, budget: Int) -> Refusal? {
        var remaining = budget
        var stoppedAt: Mark?
        func visit(_ node: Node) -> Bool {
            remaining -= 1
            guard remaining >= 0 else {
                stoppedAt = node.mark
                return false
            }
            switch node {
            case .scalar, .alias:
                return true
            case .sequence(let sequence):
                for child in sequence where !visit(child) { return false }
                return true
            case .mapping(let mapping):
                for (key, value) in mapping where !visit(key) || !visit(value) { return false }
                return true
            }
        }
        if visit(root) { return nil }
        return Refusal(line: stoppedAt?.line ?? 1, column: stoppedAt?.column ?? 1,
                       message: "the document expands to more than \(budget) nodes through aliases; "
                           + "refusing to read it (write the repeated parts out, or split the spec)")
    }
}
