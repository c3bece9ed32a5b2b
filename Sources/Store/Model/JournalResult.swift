/// How a journaled kernel operation went: planned and not yet answered, applied, refused by the
/// kernel, not attempted, or lost in transit.
///
/// `description` is the text the journal's `result` column holds, the same text every release has
/// written: `planned`, `applied`, `failed: EEXIST (17) (File exists)`, `not attempted: REASON`,
/// `indeterminate: REASON`. `init(storedText:)` reads any text back, and a text no case
/// describes is kept verbatim as `unrecognized`, so that a journal another release wrote still
/// reads and writes back unchanged.
public enum JournalResult: Sendable, Hashable, CustomStringConvertible {
    /// Journaled before it was sent, and not answered (yet). An entry that stays `planned` was
    /// interrupted: the next observation says whether it took effect.
    case planned
    /// The kernel acknowledged the operation.
    case applied
    /// The kernel refused the operation. `error` is the errno and the kernel's extended-ack text
    /// as the kernel backend words them: `EEXIST (17)`, `ENOENT (2) (no such policy)`.
    case failed(error: String)
    /// The operation was not sent (the node became unreachable, or an earlier operation of the
    /// batch stopped it); it did not take effect.
    case notAttempted(reason: String)
    /// The operation was sent but its answer was lost: it may or may not have taken effect.
    case indeterminate(reason: String)
    /// A stored text that none of the cases above describes, kept as it was read.
    case unrecognized(String)

    private static let failedPrefix = "failed: "
    private static let notAttemptedPrefix = "not attempted: "
    private static let indeterminatePrefix = "indeterminate: "

    /// Reads the journal's `result` text: the description of what it reads is `text` again, for
    /// every text.
    public init(storedText text: String) {
        if text == "planned" {
            self = .planned
        } else if text == "applied" {
            self = .applied
        } else if text.hasPrefix(Self.failedPrefix) {
            self = .failed(error: String(text.dropFirst(Self.failedPrefix.count)))
        } else if text.hasPrefix(Self.notAttemptedPrefix) {
            self = .notAttempted(reason: String(text.dropFirst(Self.notAttemptedPrefix.count)))
        } else if text.hasPrefix(Self.indeterminatePrefix) {
            self = .indeterminate(reason: String(text.dropFirst(Self.indeterminatePrefix.count)))
        } else {
            self = .unrecognized(text)
        }
    }

    /// The text the journal stores: `planned`, `applied`, `failed: ERROR`,
    /// `not attempted: REASON`, `indeterminate: REASON`, or an unrecognized text as read.
    public var description: String {
        switch self {
        case .planned: "planned"
        case .applied: "applied"
        case .failed(let error): Self.failedPrefix + error
        case .notAttempted(let reason): Self.notAttemptedPrefix + reason
        case .indeterminate(let reason): Self.indeterminatePrefix + reason
        case .unrecognized(let text): text
        }
    }
}
