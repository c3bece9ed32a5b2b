import Foundation

/// When `apply` shows the plan and asks before changing anything, and what counts as yes.
public enum ApplyConfirmation {
    /// True only when a person can answer: standard input and standard output are both
    /// terminals, the output is text, `--yes` was not given, and the run does not apply a saved
    /// plan (that plan was reviewed when it was made). Pipelines, CI and tests (where standard
    /// input or output is a file or a pipe) are never asked.
    public static func shouldAsk(
        standardInputIsTerminal: Bool, standardOutputIsTerminal: Bool, yes: Bool, jsonOutput: Bool,
        savedPlan: Bool
    ) -> Bool {
        standardInputIsTerminal && standardOutputIsTerminal && !yes && !jsonOutput && !savedPlan
    }

    /// The question, after the plan.
    public static let prompt = "Apply these changes? Only 'yes' (or 'y') applies them: "

    /// True for `yes` or `y` in any case, surrounded by spaces or not; anything else (an empty
    /// line, end of input) is no.
    public static func accepts(_ answer: String?) -> Bool {
        guard let answer else { return false }
        return ["yes", "y"].contains(answer.trimmingCharacters(in: .whitespaces).lowercased())
    }
}

/// The drain countdown `apply` shows on a terminal while it waits for old inbound SAs to drain.
public enum DrainCountdown {
    /// True only on a terminal (standard error), with text output, when apply waits for drains.
    public static func shouldShow(standardErrorIsTerminal: Bool, jsonOutput: Bool, waitingForDrain: Bool) -> Bool {
        standardErrorIsTerminal && !jsonOutput && waitingForDrain
    }

    /// `waiting for drain: old inbound SAs go in 4s` (whole seconds, rounded up; never negative).
    public static func line(secondsLeft: Double) -> String {
        let seconds = max(0, Int(secondsLeft.rounded(.up)))
        return "waiting for drain: old inbound SAs go in \(StatusWording.duration(seconds))"
    }
}
