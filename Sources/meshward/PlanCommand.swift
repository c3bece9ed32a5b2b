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
        let document = try await CommandSupport.reportingErrors {
            let (intent, warnings) = try MeshwardController.loadSpec(specs)
            if global.output == .text {
                for warning in warnings { CommandSupport.printError(warning.description, prefixed: false) }
            }
            return try await MeshwardController(stateDirectory: global.stateDirectory, logger: logger).plan(intent)
        }
        switch global.output {
        case .json: try CommandSupport.printJSON(document)
        case .text: print(PlanText(document).text)
        }
        if !document.unreachable.isEmpty { throw ExitCode.failure }
        if detailedExitcode && document.changes { throw ExitCode(2) }
    }
}

/// The text form of a plan.
struct PlanText {
    let text: String

    init(_ document: PlanDocument) {
        var lines: [String] = []
        let summary = document.summary
        if !document.changes {
            lines.append("cluster \(document.cluster) (revision \(document.revision.prefix(12))): no changes")
        } else {
            lines.append(
                "cluster \(document.cluster) (revision \(document.revision.prefix(12))): "
                    + "\(summary.channelsCreated) channels to create, \(summary.channelsRekeyed) to rekey, "
                    + "\(summary.channelsRemoved) to remove; \(summary.operations) kernel operations in "
                    + "\(document.stages.count) stages")
        }
        for stage in document.stages {
            var header = "stage \(stage.stage)"
            if let until = stage.waitsUntil { header += " (after the drain, at \(CommandSupport.timestamp(until)))" }
            lines.append(header)
            let byNode = Dictionary(grouping: stage.operations, by: \.node)
            for node in byNode.keys.sorted() {
                for operation in byNode[node] ?? [] {
                    lines.append("  \(node): \(operation.operation) \(operation.target)")
                }
            }
        }
        for problem in document.unreachable { lines.append("unreachable: \(problem.node): \(problem.reason)") }
        text = lines.joined(separator: "\n")
    }
}
