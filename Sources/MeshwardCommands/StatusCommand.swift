import ArgumentParser
import Controller
import Foundation
import MeshwardCore
import Reconciler

/// `meshward status [--node NAME] [--step STEP] [--drift] [--channel FROM:TO]`: a fleet summary,
/// then per node and per channel, as the kernels show them now.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a fleet summary, then each channel's generation, SPI, key age, time to the next rekey, "
            + "drain deadline, SA counters, step and drift, and each node's reachability and drop counters.",
        discussion:
            "--step, --drift and --channel narrow the channel list, never the summary. Exits 1 when a node did "
            + "not answer, a channel drifted from what it should be (whatever the filters), --node names no node "
            + "of the fleet, or the Store is empty while kernels hold Meshward's objects.")

    @OptionGroup var global: GlobalOptions

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only this node and its channels (its peers are read too, to check both ends).", valueName: "name"))
    var node: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only channels in this step: "
                + ChannelStep.allCases.map(\.rawValue).joined(separator: ", ") + ".", valueName: "step"))
    var step: String?

    @Flag(name: .long, help: "Only channels that drifted.")
    var drift = false

    @Option(name: .long, help: ArgumentHelp("Only the channels from one node to another.", valueName: "from:to"))
    var channel: String?

    func validate() throws {
        if let step, ChannelStep(rawValue: step) == nil {
            throw ValidationError(
                "--step takes one of " + ChannelStep.allCases.map(\.rawValue).joined(separator: ", ")
                    + ", not '\(step)'.")
        }
        if let channel, ChannelArgument(channel) == nil {
            throw ValidationError("--channel takes FROM:TO, two node names, for example web-1:app-1.")
        }
    }

    func run() async throws {
        let logger = CommandSupport.logger(global)
        let filter = StatusFilter(
            step: step, driftOnly: drift, channel: channel.flatMap(ChannelArgument.init).map { ($0.from, $0.to) })
        let document = try await CommandSupport.reportingErrors(global) {
            try await global.withController(logger: logger) { controller in
                try await controller.status(node: node, channels: filter)
            }
        }
        switch global.output {
        case .json: try CommandSupport.printJSON(document)
        case .text:
            for warning in document.warnings {
                CommandSupport.printError("warning: \(TerminalText.escaped(warning))", prefixed: false)
            }
            print(StatusText(document).text)
        }
        let drifted = (document.summary?.channelsDrifted ?? 0) > 0 || document.channels.contains(where: \.drift)
        if document.nodes.contains(where: { !$0.reachable }) || drifted
            || !document.warnings.isEmpty
        {
            throw ExitCode.failure
        }
    }
}

/// A `FROM:TO` argument: two node names, read as `apply --target` reads one (the one parser of
/// the syntax, `ApplyTarget(argument:)`).
struct ChannelArgument {
    let from: String
    let to: String

    init?(_ text: String) {
        guard case .channel(let from, let to) = ApplyTarget(argument: text) else { return nil }
        self.from = from
        self.to = to
    }
}
