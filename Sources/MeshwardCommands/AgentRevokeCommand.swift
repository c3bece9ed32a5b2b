import ArgumentParser
import Controller
import Foundation
import Reconciler
import Store

/// `meshward agent revoke SPEC... --node NAME [--reason TEXT]`: revokes every certificate the
/// cluster CA issued to one node of the spec.
struct AgentRevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke every certificate issued to one node: its agent is refused and never dialled again.",
        discussion:
            "The serials are put on the revocation list in the Store, which the controller checks on every "
            + "connection to an agent. The next apply or reconcile removes the peers' channels toward the node "
            + "make-before-break, as for a node that left the spec. New credentials "
            + "(`meshward agent credentials`) bring the node back.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Spec files or directories.", valueName: "spec"))
    var specs: [String]

    @Option(name: .long, help: ArgumentHelp("The node whose certificates are revoked.", valueName: "name"))
    var node: String

    @Option(name: .long, help: ArgumentHelp("Why, recorded with each serial.", valueName: "text"))
    var reason = "revoked by an operator"

    func validate() throws {
        if reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw ValidationError("--reason must not be empty")
        }
    }

    func run() async throws {
        let logger = CommandSupport.logger(global)
        try await CommandSupport.reportingErrors(global) {
            let (intent, _) = try MeshwardController.loadSpec(specs)
            let controller = global.controller(logger: logger)
            let revoked = try await controller.revokeAgent(intent, node: node, reason: reason)
            switch global.output {
            case .json:
                try CommandSupport.printJSON(
                    RevokeDocument(node: node, reason: reason, revoked: revoked.map(\.serial)))
            case .text:
                if revoked.isEmpty {
                    print("node \(node) has no certificate left to revoke")
                } else {
                    print(
                        "revoked \(revoked.count) certificate(s) of node \(node): \(revoked.map(\.serial).joined(separator: ", "))"
                    )
                }
            }
        }
    }
}

/// What `agent revoke --output json` prints.
struct RevokeDocument: Encodable {
    var node: String
    var reason: String
    /// The serials revoked by this command (none when every one was revoked already).
    var revoked: [String]
}
