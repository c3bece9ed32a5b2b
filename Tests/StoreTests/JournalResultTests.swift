import Store
import Testing

/// The journal's `result` text: each result is written as the text earlier releases wrote, and
/// every text, known or not, reads back as it was.
@Suite("journal results")
struct JournalResultTests {
    @Test(
        "each result is stored as the text earlier releases wrote, and that text reads back as it",
        arguments: [
            (JournalResult.planned, "planned"),
            (.applied, "applied"),
            (.failed(error: "EEXIST (17)"), "failed: EEXIST (17)"),
            (.failed(error: "ENOENT (2) (no such policy)"), "failed: ENOENT (2) (no such policy)"),
            (.notAttempted(reason: "node web-1 is unreachable"), "not attempted: node web-1 is unreachable"),
            (.indeterminate(reason: "no answer within 4 s"), "indeterminate: no answer within 4 s"),
            (.notAttempted(reason: ""), "not attempted: "),
        ])
    func storedText(result: JournalResult, text: String) {
        #expect(result.description == text)
        #expect(JournalResult(storedText: text) == result)
    }

    @Test(
        "a text no result describes reads back unchanged, as unrecognized",
        arguments: ["ok", "", "EEXIST: File exists", "failed:EEXIST (17)", "Applied", " planned", "planned\n"])
    func unrecognizedText(text: String) {
        let result = JournalResult(storedText: text)
        #expect(result == .unrecognized(text))
        #expect(result.description == text)
    }
}
