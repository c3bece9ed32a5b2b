import ArgumentParser
import Controller
import Foundation
import Reconciler

/// `meshward agent token SPEC... --node NAME [--ttl 1h]`: prints one new one-time join token
/// for a node of the spec, and nothing else (the token's secret is stored nowhere else).
struct AgentTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a one-time join token for one agent node of the spec.",
        discussion:
            "The token is one line, mwjoin1.<id>.<secret>.<sha256 of the cluster CA certificate>. The Store keeps "
            + "its id, node, expiry and SHA-256 of the secret, never the secret: this line is its only copy. "
            + "Give it to the host as the file of 'meshward agent run --join-token-file'.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Spec files or directories.", valueName: "spec"))
    var specs: [String]

    @Option(
        name: .long,
        help: ArgumentHelp("The node the token enrolls; its endpoint must be an agent.", valueName: "name"))
    var node: String

    @Option(
        name: .long, help: ArgumentHelp("How long the token is accepted, e.g. 30m, 1h, 2d.", valueName: "duration"),
        transform: { try CommandSupport.positiveDuration($0, option: "--ttl") })
    var ttl: Duration = .seconds(3600)

    func run() async throws {
        let logger = CommandSupport.logger(global)
        try await CommandSupport.reportingErrors(global) {
            let (intent, _) = try MeshwardController.loadSpec(specs)
            let token = try await global.controller(logger: logger).issueJoinToken(intent, node: node, ttl: ttl)
            // The one line: the token itself, in text and JSON output alike.
            print(token.encoded)
        }
    }
}
