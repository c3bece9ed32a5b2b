import Kernel
import Reconciler
import Store
import Testing

/// A kernel's answer is journaled as the text the journal held before results were typed: the
/// outcome's own description.
@Suite("Journal results of kernel outcomes")
struct JournalResultOutcomeTests {
    @Test(
        "each outcome is journaled as its description, and that text reads back as the same result",
        arguments: [
            (OperationOutcome.applied, JournalResult.applied),
            (.failed(errno: 17, message: nil), .failed(error: "EEXIST (17)")),
            (.failed(errno: 2, message: "no such policy"), .failed(error: "ENOENT (2) (no such policy)")),
            (.failed(errno: 4_242, message: nil), .failed(error: "errno (4242)")),
            (.notAttempted(reason: "node web-1 is unreachable"), .notAttempted(reason: "node web-1 is unreachable")),
            (.indeterminate(reason: "no answer within 4 s"), .indeterminate(reason: "no answer within 4 s")),
        ])
    func journaled(outcome: OperationOutcome, expected: JournalResult) {
        let result = JournalResult(outcome)
        #expect(result == expected)
        #expect(result.description == outcome.description)
        #expect(JournalResult(storedText: outcome.description) == result)
    }
}
