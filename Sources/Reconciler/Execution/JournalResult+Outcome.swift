import Kernel
import Store

extension JournalResult {
    /// What the journal records of a kernel's answer: the same text as the outcome's
    /// `description` (`applied`, `failed: EEXIST (17) (File exists)`, `not attempted: …`,
    /// `indeterminate: …`), the text the journal has always held.
    public init(_ outcome: OperationOutcome) {
        switch outcome {
        case .applied:
            self = .applied
        case .failed(let errno, let message):
            self = .failed(error: ErrnoName.name(errno) + (message.map { " (\($0))" } ?? ""))
        case .notAttempted(let reason):
            self = .notAttempted(reason: reason)
        case .indeterminate(let reason):
            self = .indeterminate(reason: reason)
        }
    }
}
