import ArgumentParser
import Foundation
import Reconciler

/// `meshward plan SPEC... [--detailed-exitcode]`: the staged changes, without making them.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the staged changes apply would make, per stage and node. Keys are never shown.",
        discussion: """
            Reads every node and the state, then rehearses the passes on copies, so the stages are the ones \
            apply would run. SPIs of generations not yet issued show as new-N. With --detailed-exitcode: \
            0 nothing to change, 2 changes pending, 1 failure.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Spec files or directories.", valueName: "spec"))
    var specs: [String]

    @Flag(name: .long, help: "Exit 2 when there are changes, 0 when there are none.")
    var detailedExitcode = false

    func run() async throws {
        let logger = CommandSupport.logger(global)
        let document = try await CommandSupport.reportingErrors(global) {
            let (intent, warnings) = try MeshwardController.loadSpec(specs)
            if global.output == .text {
                for warning in warnings { CommandSupport.printError(warning.description, prefixed: false) }
            }
            return try await MeshwardController(stateDirectory: global.stateDirectory, logger: logger).plan(intent)
        }
        switch global.output {
        case .json: try CommandSupport.printJSON(document)
        case .text:
            for warning in document.warnings {
                CommandSupport.printError("warning: \(TerminalText.escaped(warning))", prefixed: false)
            }
            print(PlanText(document).text)
        }
        if !document.unreachable.isEmpty { throw ExitCode.failure }
        if detailedExitcode && document.changes { throw ExitCode(2) }
    }
}
