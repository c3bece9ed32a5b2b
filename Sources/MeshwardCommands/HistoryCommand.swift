import ArgumentParser
import Reconciler

/// `meshward history`: applied revisions and what each changed.
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "List applied spec revisions, newest first, with the command that made each and what it changed.")

    @OptionGroup var global: GlobalOptions

    /// `.unconditional`, so that `--limit -1` reaches `validate()` and gets a clear message
    /// instead of argument-parser's "Missing value".
    @Option(name: .long, parsing: .unconditional, help: "Show at most this many revisions (1 or more).")
    var limit: Int?

    func validate() throws {
        if let limit, limit < 1 {
            throw ValidationError(
                "--limit takes a number of revisions, 1 or more, not \(limit); leave --limit out to show every "
                    + "revision.")
        }
    }

    func run() async throws {
        let logger = CommandSupport.logger(global)
        let document = try await CommandSupport.reportingErrors(global) {
            try await global.controller(logger: logger).history(limit: limit)
        }
        switch global.output {
        case .json: try CommandSupport.printJSON(document)
        case .text:
            if document.revisions.isEmpty { print("no revisions applied yet") }
            for revision in document.revisions {
                print(
                    "\(revision.id)  \(CommandSupport.timestamp(revision.appliedAt))  \(revision.hash.prefix(12))  "
                        + "\(TerminalText.escaped(revision.command ?? "-"))  \(TerminalText.escaped(revision.source))  "
                        + TerminalText.escaped(revision.summary))
            }
        }
    }
}
