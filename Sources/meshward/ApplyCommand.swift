import ArgumentParser
import Foundation
import Reconciler

/// `meshward apply SPEC... [--no-wait]`: applies the spec and converges the fleet.
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Apply a spec: stage every change make-before-break until the fleet converges.",
        discussion: """
            Runs passes (observe every node, advance each channel by at most one step) until every kernel \
            matches the spec. By default waits for old inbound SAs to drain; --no-wait leaves that to the \
            next run. Exits 0 when converged (or only drains remain with --no-wait), 1 when anything failed \
            or a node could not be reached.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Spec files or directories.", valueName: "spec"))
    var specs: [String]

    @Flag(name: .long, help: "Do not wait for drains; the next apply or reconcile cycle finishes them.")
    var noWait = false

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Proceed although the Store is empty while kernels hold Meshward's objects (lost-Store recovery: "
                + "every channel is rekeyed and the history starts again)."))
    var force = false

    func run() async throws {
        try await ApplyRunner(global: global, specs: specs, waitForDrain: !noWait, rekey: nil, force: force).run()
    }
}

/// Shared by `apply` and `rekey`: load, apply with progress, print, exit.
struct ApplyRunner {
    let global: GlobalOptions
    let specs: [String]
    let waitForDrain: Bool
    let rekey: RekeySelection?
    var force = false

    func run() async throws {
        let logger = CommandSupport.logger(global)
        let document = try await CommandSupport.reportingErrors(global) {
            let (intent, warnings) = try MeshwardController.loadSpec(specs)
            if global.output == .text {
                for warning in warnings {
                    CommandSupport.printError(TerminalText.escaped(lines: warning.description), prefixed: false)
                }
            }
            let controller = MeshwardController(stateDirectory: global.stateDirectory, logger: logger)
            let showProgress = global.output == .text && CommandSupport.isInteractive
            return try await controller.apply(
                intent, source: specs.joined(separator: " "), waitForDrain: waitForDrain, rekey: rekey, force: force,
                onPass: { pass in
                    guard showProgress else { return }
                    CommandSupport.printError(ProgressLine(pass).text, prefixed: false)
                })
        }
        switch global.output {
        case .json: try CommandSupport.printJSON(document)
        case .text: print(ApplyText(document).text)
        }
        if document.outcome == "blocked" || !document.failures.isEmpty { throw ExitCode.failure }
    }
}

/// One line per pass on a terminal: what was sent and where the channels stand.
struct ProgressLine {
    let text: String

    init(_ pass: PassReport) {
        let applied = pass.results.filter { $0.outcome.isApplied }.count
        let failed = pass.results.count - applied
        let counts = pass.plan.stepCounts
        let steps = ChannelStep.allCases.compactMap { step in counts[step].map { "\($0) \(step.rawValue)" } }
        var line = "pass \(pass.number): \(applied) operation\(applied == 1 ? "" : "s") applied"
        if failed > 0 { line += ", \(failed) failed" }
        if !pass.issued.isEmpty { line += ", \(pass.issued.count) new generation\(pass.issued.count == 1 ? "" : "s")" }
        if !pass.unreachable.isEmpty {
            line +=
                ", unreachable: \(pass.unreachable.keys.sorted().map { TerminalText.escaped($0) }.joined(separator: ", "))"
        }
        line += " | channels: " + (steps.isEmpty ? "none" : steps.joined(separator: ", "))
        text = line
    }
}

/// The text form of an apply result.
struct ApplyText {
    let text: String

    init(_ document: ApplyDocument) {
        var lines: [String] = []
        let head = "cluster \(TerminalText.escaped(document.cluster)) (revision \(document.revision.prefix(12))): "
        switch document.outcome {
        case "converged":
            lines.append(
                head + "converged in \(document.passes) pass\(document.passes == 1 ? "" : "es"), "
                    + "\(document.operations) kernel operation\(document.operations == 1 ? "" : "s")")
        case "waiting-for-drain":
            lines.append(
                head + "applied \(document.operations) kernel operations; old inbound SAs drain until "
                    + "\(document.waitingUntil.map(CommandSupport.timestamp) ?? "later"); run apply again to finish")
        default:
            lines.append(head + "blocked after \(document.operations) kernel operations: nodes did not answer")
        }
        let reasons = Dictionary(grouping: document.generationsIssued, by: \.reason).mapValues(\.count)
        if !reasons.isEmpty {
            lines.append(
                "  new generations: "
                    + reasons.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
                    .joined(separator: ", "))
        }
        for problem in document.unreachable {
            lines.append(
                "  unreachable: \(TerminalText.escaped(problem.node)): \(TerminalText.escaped(problem.reason))")
        }
        for failure in document.failures {
            lines.append(
                "  failed: \(TerminalText.escaped(failure.node)): \(failure.operation) \(failure.target): "
                    + TerminalText.escaped(failure.error))
        }
        text = lines.joined(separator: "\n")
    }
}
