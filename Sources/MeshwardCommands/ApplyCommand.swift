import ArgumentParser
import Controller
import DesiredState
import Foundation
import MeshwardCore
import Reconciler

#if canImport(Glibc)
import Glibc
#endif

/// `meshward apply SPEC... | PLANFILE [--no-wait] [--yes] [--target NODE|FROM:TO] [--force]`:
/// applies the spec (or a saved plan) and converges the fleet.
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Apply a spec, or a plan saved with plan --out: stage every change make-before-break until the "
            + "fleet converges.",
        discussion: """
            Runs passes (observe every node, advance each channel by at most one step) until every kernel \
            matches the spec. By default waits for old inbound SAs to drain; --no-wait leaves that to the \
            next run. On a terminal, shows the plan and asks first unless --yes (never off a terminal). \
            While another controller holds the Store's lease, waits up to --lock-timeout (default 60s), saying \
            who holds it, then exits 1 naming the holder. Given one file saved by plan --out, applies exactly that plan, or refuses (exit 1) when the Store \
            or the kernels moved on since it was made. Refuses a spec of another cluster than the Store's, and \
            without --force a spec that removes more than half of the Store's channels. Exits 0 when \
            converged (or only drains remain with --no-wait), 1 when anything failed or a node could not be \
            reached.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(
        help: ArgumentHelp(
            "Spec files or directories, or one plan file saved by `plan --out`.", valueName: "spec|planfile"))
    var specs: [String]

    @Flag(name: .long, help: "Do not wait for drains; the next apply or reconcile cycle finishes them.")
    var noWait = false

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Proceed although the spec removes more than half of the Store's channels, or the Store is empty while "
                + "kernels hold Meshward's objects (lost-Store recovery: every channel is rekeyed and the history "
                + "starts again)."))
    var force = false

    @Flag(name: [.customShort("y"), .long], help: "Do not ask for confirmation on a terminal.")
    var yes = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only the channels to or from this node, or the channels FROM:TO (both families); every other "
                + "channel and its kernel objects are left as they are.", valueName: "node|from:to"))
    var target: String?

    @OptionGroup var leaseWait: LeaseWaitOptions

    func validate() throws {
        if let target, ApplyTarget(argument: target) == nil {
            throw ValidationError("--target takes a node name or FROM:TO, for example web-1 or web-1:app-1.")
        }
    }

    func run() async throws {
        try await ApplyRunner(
            global: global, specs: specs, waitForDrain: !noWait, rekey: nil, force: force, yes: yes,
            target: target.flatMap(ApplyTarget.init(argument:)), lockTimeout: leaseWait.lockTimeout
        ).run()
    }
}

/// Shared by `apply` and `rekey`: load, confirm on a terminal, apply with progress, print, exit.
struct ApplyRunner {
    let global: GlobalOptions
    let specs: [String]
    let waitForDrain: Bool
    let rekey: RekeySelection?
    var force = false
    var yes = false
    var target: ApplyTarget?
    var lockTimeout: Duration = .seconds(60)

    func run() async throws {
        let logger = CommandSupport.logger(global)
        let countdown = CountdownLine()
        let document = try await CommandSupport.reportingErrors(global) {
            try await global.withController(logger: logger) { controller in
                try await apply(with: controller, countdown: countdown)
            }
        }
        switch global.output {
        case .json: try CommandSupport.printJSON(document)
        case .text: print(ApplyText(document).text)
        }
        if document.outcome == .blocked || !document.failures.isEmpty { throw ExitCode.failure }
    }

    /// Plans (when it asks first) and applies with `controller`.
    private func apply(with controller: MeshwardController, countdown: CountdownLine) async throws -> ApplyDocument {
        var target = self.target
        let intent: FleetIntent
        var expected: PlanDocument?
        var planFile: String?
        if specs.count == 1, let saved = try MeshwardController.readSavedPlan(specs[0]) {
            if target != nil || rekey != nil {
                throw ControllerError.unreadablePlan(
                    file: specs[0], reason: "a saved plan keeps its own target; give no --target or selector")
            }
            intent = try MeshwardController.loadSpec(of: saved, file: specs[0])
            target = saved.plan.target.flatMap(ApplyTarget.init(argument:))
            expected = saved.plan
            planFile = specs[0]
        } else {
            let (loaded, warnings) = try MeshwardController.loadSpec(specs)
            if global.output == .text {
                for warning in warnings {
                    CommandSupport.printError(TerminalText.escaped(lines: warning.description), prefixed: false)
                }
            }
            intent = loaded
        }
        let ask = ApplyConfirmation.shouldAsk(
            standardInputIsTerminal: isatty(STDIN_FILENO) == 1,
            standardOutputIsTerminal: isatty(STDOUT_FILENO) == 1,
            yes: yes, jsonOutput: global.output == .json, savedPlan: expected != nil)
        if ask && rekey == nil {
            let shown = try await controller.plan(intent, target: target)
            if shown.changes {
                for warning in shown.warnings {
                    CommandSupport.printError("warning: \(TerminalText.escaped(warning))", prefixed: false)
                }
                print(PlanText(shown, verbose: global.verbose).text)
                print(ApplyConfirmation.prompt, terminator: "")
                fflush(nil)
                guard ApplyConfirmation.accepts(readLine()) else { throw ControllerError.declined }
                expected = shown
            }
        }
        let showProgress = global.output == .text && CommandSupport.isInteractive
        let showCountdown = DrainCountdown.shouldShow(
            standardErrorIsTerminal: CommandSupport.isInteractive, jsonOutput: global.output == .json,
            waitingForDrain: waitForDrain)
        defer { countdown.stop() }
        return try await controller.apply(
            intent, source: planFile ?? specs.joined(separator: " "), waitForDrain: waitForDrain, rekey: rekey,
            force: force, target: target, expected: expected, planFile: planFile, lockTimeout: lockTimeout,
            onLeaseWait: { wait in
                CommandSupport.printError(
                    TerminalText.escaped(
                        "waiting up to \(SpecDuration.format(wait.timeout)) for the Store's lease, held by \(wait.heldBy)"
                    ),
                    prefixed: false)
            },
            onPass: { pass in
                countdown.stop()
                guard showProgress else { return }
                CommandSupport.printError(ProgressLine(pass).text, prefixed: false)
                if showCountdown, let deadline = pass.plan.nextDeadline, !pass.plan.hasWork, !pass.madeProgress,
                    pass.failures.isEmpty
                {
                    countdown.start(until: deadline)
                }
            })
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
        case .converged:
            lines.append(
                head + "converged in \(document.passes) pass\(document.passes == 1 ? "" : "es"), "
                    + "\(document.operations) kernel operation\(document.operations == 1 ? "" : "s")")
        case .waitingForDrain:
            lines.append(
                head + "applied \(document.operations) kernel operations; old inbound SAs drain until "
                    + "\(document.waitingUntil.map(CommandSupport.timestamp) ?? "later"); run apply again to finish")
        case .blocked:
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
        for node in document.restored ?? [] {
            lines.append(
                "  restored: \(TerminalText.escaped(node.node)) after "
                    + String(format: "%.1f s", node.restoreSeconds)
                    + " (unreachable since \(CommandSupport.timestamp(node.unreachableSince)))")
        }
        text = lines.joined(separator: "\n")
    }
}
