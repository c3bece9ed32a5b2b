import ArgumentParser
import Foundation
import Reconciler

/// `meshward status [--node NAME]`: per channel and per node, as the kernels show them now.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each channel's generation, SPI, key age, next rekey, step and drift, and each node's "
            + "reachability and drop counters.",
        discussion:
            "Exits 1 when a node did not answer, a channel drifted from what it should be, --node names no node "
            + "of the fleet, or the Store is empty while kernels hold Meshward's objects.")

    @OptionGroup var global: GlobalOptions

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only this node and its channels (its peers are read too, to check both ends).", valueName: "name"))
    var node: String?

    func run() async throws {
        let logger = CommandSupport.logger(global)
        let document = try await CommandSupport.reportingErrors(global) {
            try await MeshwardController(stateDirectory: global.stateDirectory, logger: logger).status(node: node)
        }
        switch global.output {
        case .json: try CommandSupport.printJSON(document)
        case .text:
            for warning in document.warnings {
                CommandSupport.printError("warning: \(TerminalText.escaped(warning))", prefixed: false)
            }
            print(StatusText(document).text)
        }
        if document.nodes.contains(where: { !$0.reachable }) || document.channels.contains(where: \.drift)
            || !document.warnings.isEmpty
        {
            throw ExitCode.failure
        }
    }
}

/// The text form of a status document.
struct StatusText {
    let text: String

    init(_ document: StatusDocument) {
        var lines = [
            "cluster \(TerminalText.escaped(document.cluster ?? "?")) (revision \(document.revision?.prefix(12) ?? "?"))"
        ]
        lines.append("nodes:")
        for node in document.nodes {
            var line = "  \(TerminalText.escaped(node.name)) [\(TerminalText.escaped(node.endpoint))] "
            line +=
                node.reachable
                ? "reachable, \(node.securityAssociations) SAs, \(node.policies) policies" : "UNREACHABLE"
            if let error = node.error { line += ": \(TerminalText.escaped(error))" }
            if !node.dropCounters.isEmpty {
                line +=
                    "; drops: "
                    + node.dropCounters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                    .joined(separator: " ")
            }
            lines.append(line)
        }
        lines.append("channels:")
        for channel in document.channels {
            var line = "  \(TerminalText.escaped(channel.channel)) \(channel.step)"
            if let generation = channel.generation, let spi = channel.spi {
                line += " gen \(generation) spi \(spi) \(channel.cipher ?? "")"
            }
            if let age = channel.keyAgeSeconds { line += " key age \(Self.duration(age))" }
            if let next = channel.nextRekey { line += " next rekey \(CommandSupport.timestamp(next))" }
            if channel.drift {
                line += " DRIFT: " + channel.driftDetail.map { TerminalText.escaped($0) }.joined(separator: "; ")
            }
            lines.append(line)
        }
        text = lines.joined(separator: "\n")
    }

    static func duration(_ seconds: Int) -> String {
        if seconds < 120 { return "\(seconds)s" }
        if seconds < 7_200 { return "\(seconds / 60)m" }
        return "\(seconds / 3_600)h\(seconds % 3_600 / 60)m"
    }
}
