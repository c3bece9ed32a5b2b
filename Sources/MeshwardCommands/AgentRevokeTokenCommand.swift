import ArgumentParser
import Controller
import Foundation
import Reconciler

/// `meshward agent revoke-token SPEC... ID`: revokes an unspent join token, so that it never
/// enrolls its node.
struct AgentRevokeTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke-token",
        abstract: "Revoke an unspent join token by its id (as 'meshward agent tokens' lists it).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Spec files or directories, then the token's id.", valueName: "spec"))
    var arguments: [String]

    func validate() throws {
        guard arguments.count >= 2 else {
            throw ValidationError("Give the spec files or directories, then the id of the token to revoke.")
        }
    }

    func run() async throws {
        let logger = CommandSupport.logger(global)
        try await CommandSupport.reportingErrors(global) {
            let specs = Array(arguments.dropLast())
            let id = arguments[arguments.count - 1]
            let (intent, _) = try MeshwardController.loadSpec(specs)
            try await global.controller(logger: logger).revokeJoinToken(intent, id: id)
            switch global.output {
            case .json: try CommandSupport.printJSON(["revoked": id])
            case .text: print("revoked join token \(id)")
            }
        }
    }
}
