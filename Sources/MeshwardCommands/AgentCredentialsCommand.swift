import Agent
import ArgumentParser
import Controller
import Foundation
import Reconciler

/// `meshward agent credentials SPEC... --node NAME --out DIR`: writes a ready agent directory
/// for one node, offline, from the cluster CA in the Store (created there on first use).
struct AgentCredentialsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credentials",
        abstract: "Write an agent directory for one node of the spec: key, certificate and cluster CA certificate.",
        discussion:
            "The certificate names spiffe://CLUSTER/node/NAME and the node's addresses and is valid for the spec's "
            + "defaults.certificates.lifetime (7d unless set). "
            + "The cluster CA is made on first use and kept sealed in the Store; copy DIR to the host "
            + "(/var/lib/meshward-agent) over a trusted channel.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Spec files or directories.", valueName: "spec"))
    var specs: [String]

    @Option(name: .long, help: ArgumentHelp("The node whose agent gets the credentials.", valueName: "name"))
    var node: String

    @Option(name: .long, help: ArgumentHelp("The agent directory to write (created 0700).", valueName: "dir"))
    var out: String

    func run() async throws {
        let logger = CommandSupport.logger(global)
        try await CommandSupport.reportingErrors(global) {
            let (intent, _) = try MeshwardController.loadSpec(specs)
            // The Store, and the master key, the global options name (PostgreSQL too).
            let controller = global.controller(logger: logger)
            _ = try await controller.writeAgentCredentials(intent, node: node, to: AgentDirectory(path: out))
            switch global.output {
            case .json: try CommandSupport.printJSON(["node": node, "directory": out, "cluster": intent.cluster])
            case .text: print("wrote the agent directory of node \(node) (cluster \(intent.cluster)) to \(out)")
            }
        }
    }
}
