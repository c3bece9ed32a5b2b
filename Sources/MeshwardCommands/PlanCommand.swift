import ArgumentParser
import Controller
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
            changes), - remove; beyond 200 channels, their counts per flow and per node instead (--verbose lists \
            every channel); then the fleet-wide settings that change and the counts. --verbose adds the \
            kernel operations per stage and node (JSON always has every channel and operation). SPIs of generations not yet issued \
            show as new-N. --out FILE saves the plan (with the spec's text and fingerprints of the Store and \
            the kernels, never keys) for `meshward apply FILE`. --refresh=false reads no kernel: the spec is \
            compared with what the Store's records and the spec of the last apply say each kernel holds, and the \
            plan says the kernels were not read. With --detailed-exitcode: 0 nothing to change, 2 changes pending (a changed \
            revision included), 1 failure.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Spec files or directories.", valueName: "spec"))
    var specs: [String]

    @Flag(name: .long, help: "Exit 2 when there are changes, 0 when there are none.")
    var detailedExitcode = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Save the plan to this file (0600, no key material) for `meshward apply FILE`.", valueName: "file"))
    var out: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Plan only what `apply --target` would do for this node or FROM:TO.", valueName: "target"))
    var target: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "With false, read no kernel: compare the spec with what the Store's records say each kernel was given "
                + "(drift on the nodes is not seen).",
            valueName: "bool"))
    var refresh = true

    func validate() throws {
        if !refresh, out != nil {
            throw ValidationError(
                "--out saves a plan with the kernels' fingerprint for apply to check, and --refresh=false reads no "
                    + "kernel; plan with the kernels read to save it.")
        }
        if let target, ApplyTarget(argument: target) == nil {
            throw ValidationError("--target takes a node name or FROM:TO, for example web-1 or web-1:app-1.")
        }
    }

    func run() async throws {
        // The process ends with the command: the plan's records, readings and spec are left to
        // the exit to free.
        ExitWithoutFreeing.process.keepUntilExit()
        let logger = CommandSupport.logger(global)
        let document = try await CommandSupport.reportingErrors(global) {
            let document = try await global.withController(logger: logger) { controller in
                // The Store opens (and is checked) on another core while the spec loads.
                controller.openStoreAhead()
                let (intent, warnings) = try MeshwardController.loadSpec(specs)
                if global.output == .text {
                    for warning in warnings {
                        CommandSupport.printError(TerminalText.escaped(lines: warning.description), prefixed: false)
                    }
                }
                let document = try await controller.plan(
                    intent, target: target.flatMap(ApplyTarget.init(argument:)), refresh: refresh)
                ExitWithoutFreeing.process.keep(intent)
                return document
            }
            if let out {
                let saved = SavedPlan(
                    createdAt: Date(),
                    madeBy: "meshward plan " + CommandLine.arguments.dropFirst(2).joined(separator: " "),
                    specFiles: try MeshwardController.specFiles(specs), plan: document)
                try MeshwardController.write(saved, to: out)
            }
            return document
        }
        switch global.output {
        case .json: try CommandSupport.printJSON(document)
        case .text:
            for warning in document.warnings {
                CommandSupport.printError("warning: \(TerminalText.escaped(warning))", prefixed: false)
            }
            print(PlanText(document, verbose: global.verbose).text)
            if let out {
                print(
                    "Saved the plan to \(TerminalText.escaped(out)); apply exactly it with `meshward apply \(TerminalText.escaped(out))`."
                )
            }
        }
        ExitWithoutFreeing.process.keep(document)
        if !document.unreachable.isEmpty { throw ExitCode.failure }
        if detailedExitcode && document.changes { throw ExitCode(2) }
    }
}
