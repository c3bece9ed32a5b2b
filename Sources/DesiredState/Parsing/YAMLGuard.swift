import Yams

/// Bounds the work a spec file can cause before and after Yams composes it.
///
/// Before composing, a lexical scan refuses nesting deeper than `maximumDepth` (Yams composes
/// recursively) and any key that is not a scalar: aliases, lists and mappings used as keys, and
/// explicit `? ` keys. Yams hashes every key whole to find duplicates, so a key holding an alias
/// to an expanded structure would cost exponential time. After composing, `checkExpansion` walks
/// the tree as the parser will see it, aliases expanded, and stops at `nodeBudget` nodes or at a
/// nesting deeper than `maximumDepth` (block collections nested by indentation, which the scan
/// does not count): a "billion laughs" document is refused with a located error in bounded time
/// and memory.
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
        // Where each open flow collection started, innermost last (at most `maximumDepth + 1`).
        var flowStarts: [(line: Int, column: Int)] = []
        var dashRun = 0
        var atLineStart = true
        // The last byte on this line that is not a space, outside quotes and comments.
        var lastSignificant: UInt8 = 0x0A
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
                lastSignificant = 0x0A
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
            let tokenStart =
                isSpace(previous) || previous == UInt8(ascii: "[") || previous == UInt8(ascii: "{")
                || previous == UInt8(ascii: ",")
            if byte == UInt8(ascii: "#"), isSpace(previous) {
                inComment = true
            } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\""), tokenStart {
                quote = byte
            } else if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{"), tokenStart {
                flowDepth += 1
                flowStarts.append((line, column))
            } else if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
                flowDepth = max(0, flowDepth - 1)
                let start = flowStarts.popLast() ?? (line, column)
                var probe = index + 1
                while probe < bytes.count - 1, bytes[probe] == 0x20 || bytes[probe] == 0x09 { probe += 1 }
                if bytes[probe] == UInt8(ascii: ":"), flowDepth > 0 || isSpace(bytes[probe + 1]) {
                    return Refusal(line: start.line, column: start.column, message: collectionKeyMessage)
                }
            } else if byte == UInt8(ascii: "-"), atLineStart, isSpace(next) {
                dashRun += 1
            } else if byte == UInt8(ascii: "?"), isSpace(next),
                atLineStart || (flowDepth > 0 && isFlowEntryStart(lastSignificant))
            {
                var probe = index + 1
                while probe < bytes.count - 1, bytes[probe] == 0x20 || bytes[probe] == 0x09 { probe += 1 }
                let message = bytes[probe] == UInt8(ascii: "*") ? aliasKeyMessage : explicitKeyMessage
                return Refusal(line: line, column: column, message: message)
            } else if byte == UInt8(ascii: "*"), tokenStart {
                var probe = index + 1
                while probe < bytes.count - 1, !isSpace(bytes[probe]), !isFlowIndicator(bytes[probe]) { probe += 1 }
                while probe < bytes.count - 1, bytes[probe] == 0x20 || bytes[probe] == 0x09 { probe += 1 }
                if bytes[probe] == UInt8(ascii: ":"), probe + 1 < bytes.count, isSpace(bytes[probe + 1]) {
                    return Refusal(line: line, column: column, message: aliasKeyMessage)
                }
            }
            if !isSpace(byte), !(byte == UInt8(ascii: "-") && atLineStart) { atLineStart = false }
            if !isSpace(byte) { lastSignificant = byte }
            if flowDepth + dashRun > maximumDepth {
                return Refusal(line: line, column: column, message: depthMessage)
            }
        }
        return nil
    }

    private static let aliasKeyMessage = "an alias may not be used as a mapping key; write the key out"
    private static let collectionKeyMessage =
        "a list or mapping may not be used as a mapping key; a key is a plain name such as 'nodes'"
    private static let explicitKeyMessage =
        "explicit mapping keys ('? ') are not supported; write 'key: value' with a plain key"

    /// The message for a nesting deeper than `maximumDepth`.
    static let depthMessage =
        "collections are nested more than \(maximumDepth) levels deep; a spec needs only a few levels"

    /// True for the bytes after which, inside a flow collection, a new entry (or key) starts.
    private static func isFlowEntryStart(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") || byte == UInt8(ascii: ",") || byte == 0x0A
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

    private static func isFlowIndicator(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: ",") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]")
            || byte == UInt8(ascii: "{") || byte == UInt8(ascii: "}")
    }

    /// The number of nodes a document of `byteCount` bytes may expand to through aliases.
    static func nodeBudget(byteCount: Int) -> Int { max(1_000_000, 4 * byteCount) }

    /// Counts the nodes of `root` with aliases expanded, and its depth; a refusal at the node
    /// where the budget ran out or where the nesting went deeper than `maximumDepth`.
    ///
    /// An alias repeats the node it names, which Yams shares rather than copies. The size and
    /// height of each collection walked are remembered by where it was written, so a repeated
    /// node is counted without being walked again: the work is linear in the document, however
    /// far its aliases expand.
    static func checkExpansion(_ root: Node, budget: Int) -> Refusal? {
        struct Place: Hashable {
            let line: Int
            let column: Int
            let isMapping: Bool
        }
        var remaining = budget
        var walked: [Place: (size: Int, height: Int)] = [:]
        var refusal: Refusal?
        func refuse(_ node: Node, _ message: String) -> Int? {
            refusal = Refusal(line: node.mark?.line ?? 1, column: node.mark?.column ?? 1, message: message)
            return nil
        }
        func budgetMessage() -> String {
            "the document expands to more than \(budget) nodes through aliases; "
                + "refusing to read it (write the repeated parts out, or split the spec)"
        }
        // The height of `node` (1 for a scalar), or nil once refused.
        func visit(_ node: Node, depth: Int) -> Int? {
            let children: [Node]
            let isMapping: Bool
            switch node {
            case .scalar, .alias:
                remaining -= 1
                return remaining >= 0 ? 1 : refuse(node, budgetMessage())
            case .sequence(let sequence):
                children = Array(sequence)
                isMapping = false
            case .mapping(let mapping):
                children = mapping.flatMap { [$0.key, $0.value] }
                isMapping = true
            }
            guard depth < maximumDepth else { return refuse(node, depthMessage) }
            let place = node.mark.map { Place(line: $0.line, column: $0.column, isMapping: isMapping) }
            if let place, let known = walked[place] {
                remaining -= known.size
                guard remaining >= 0 else { return refuse(node, budgetMessage()) }
                guard depth + known.height <= maximumDepth else { return refuse(node, depthMessage) }
                return known.height
            }
            let before = remaining
            remaining -= 1
            guard remaining >= 0 else { return refuse(node, budgetMessage()) }
            var height = 1
            for child in children {
                guard let childHeight = visit(child, depth: depth + 1) else { return nil }
                height = max(height, childHeight + 1)
            }
            if let place { walked[place] = (before - remaining, height) }
            return height
        }
        return visit(root, depth: 0) == nil ? refusal : nil
    }
}
