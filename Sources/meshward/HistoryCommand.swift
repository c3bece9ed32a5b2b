import ArgumentParser
import Reconciler

/// `meshward history`: applied revisions and what each changed.
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "List applied spec revisions, newest first, with what each changed.")

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Show at most this many revisions.")
    var limit: Int?

    func run() async throws {
        let logger = CommandSupport.logger(global)
        let document = try await CommandSupport.reportingErrors {
            try MeshwardController(stateDirectory: global.stateDirectory, logger: logger).history(limit: limit)
        }
        switch global.output {
        case .json: try CommandSupport.printJSON(document)
        case .text:
            if document.revisions.isEmpty { print("no revisions applied yet") }
            for revision in document.revisions {
                print(
                    "\(revision.id)  \(CommandSupport.timestamp(revision.appliedAt))  \(revision.hash.prefix(12))  "
                        + "\(revision.source)  \(revision.summary)")
            }
        }
    }
}
