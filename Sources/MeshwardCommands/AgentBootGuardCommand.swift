import Agent
import ArgumentParser
import Controller
import Foundation
import Reconciler

/// `meshward agent boot-guard SPEC... --node NAME`: prints the boot guard list of one agent node,
/// derived from the spec alone, for a host that joins by token to carry as
/// `AGENT_DIR/boot-guard.json` (a cloud-init writes it next to the token file).
struct AgentBootGuardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot-guard",
        abstract: "Print the boot guard list of one agent node, for a host that joins by token.",
        discussion:
            "One entry for each selector of each channel from the node that enforces ESP (never a key or an SPI), "
            + "as the agent keeps it in boot-guard.json. Written into the agent directory (0600) before "
            + "'meshward agent run --join-token-file' starts, it is installed before the host is enrolled: traffic "
            + "toward those peers is dropped, never sent in plaintext, until the controller installs the channels.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Spec files or directories.", valueName: "spec"))
    var specs: [String]

    @Option(name: .long, help: ArgumentHelp("The node; its endpoint must be an agent.", valueName: "name"))
    var node: String

    func run() async throws {
        try await CommandSupport.reportingErrors(global) {
            let (intent, _) = try MeshwardController.loadSpec(specs)
            let entries = try MeshwardController.bootGuardList(intent, node: node)
            // The file's own format, in text and JSON output alike.
            print(BootGuard.encode(entries), terminator: "")
        }
    }
}
