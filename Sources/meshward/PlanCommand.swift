import ArgumentParser
import Foundation
import Reconciler

/// `meshward plan SPEC... [--detailed-exitcode]`: the staged changes, without making them.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the changes apply would make: one line per channel, the settings that change, the counts; "
            + "with --verbose the kernel operations per stage and node. Keys are never shown.",
        discussion: """
            Reads every node and the state, then rehearses the passes on copies, so the changes are the ones \
            apply would make. Each channel is one line: + create, ~ rekey or update (with the reason and what \
            changes), - remove; then the fleet-wide settings that change and the counts. --verbose adds the \
            kernel operations per stage and node (JSON always has them). SPIs of generations not yet issued \
            show as new-N. With --detailed-exitcode: 0 nothing to change, 2 changes pending (a changed \
            revision included), 1 failure.
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
                for warning in warnings {
                    CommandSupport.printError(TerminalText.escaped(lines: warning.description), prefixed: false)
                }
            }
            return try await MeshwardController(stateDirectory: global.stateDirectory, logger: logger).plan(intent)
        }
        switch global.output {
        case .json: try CommandSupport.printJSON(document)
        case .text:
            for warning in document.warnings {
                CommandSupport.printError("warning: \(TerminalText.escaped(warning))", prefixed: false)
            }
            print(PlanText(document, verbose: global.verbose).text)
        }
        if !document.unreachable.isEmpty { throw ExitCode.failure }
        if detailedExitcode && document.changes { throw ExitCode(2) }
    }
}
