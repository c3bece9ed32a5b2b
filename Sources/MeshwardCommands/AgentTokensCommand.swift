import ArgumentParser
import Controller
import Foundation
import Reconciler
import Store

/// `meshward agent tokens SPEC...`: the join tokens neither spent nor revoked (id, node,
/// created, expiry), never a secret.
struct AgentTokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "List the join tokens neither spent nor revoked: id, node, created, expires.",
        discussion:
            "An expired token is listed as expired until it is revoked. No secret is ever shown: none is stored.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Spec files or directories.", valueName: "spec"))
    var specs: [String]

    /// One token as `--output json` prints it.
    struct Entry: Encodable {
        let id: String
        let node: String
        let created: String
        let expires: String
        let expired: Bool
    }

    func run() async throws {
        let logger = CommandSupport.logger(global)
        try await CommandSupport.reportingErrors(global) {
            let (intent, _) = try MeshwardController.loadSpec(specs)
            let tokens = try await global.controller(logger: logger).unspentJoinTokens(intent)
            let now = Date()
            let entries = tokens.map { token in
                Entry(
                    id: token.id, node: token.node, created: CommandSupport.timestamp(token.createdAt),
                    expires: CommandSupport.timestamp(token.expiresAt), expired: token.expiresAt <= now)
            }
            switch global.output {
            case .json: try CommandSupport.printJSON(["tokens": entries])
            case .text: print(Self.table(entries))
            }
        }
    }

    /// The entries as an aligned table under a header; a line saying so when there are none.
    static func table(_ entries: [Entry]) -> String {
        guard !entries.isEmpty else { return "no unspent join tokens" }
        let rows =
            [["ID", "NODE", "CREATED", "EXPIRES"]]
            + entries.map { [$0.id, $0.node, $0.created, $0.expires + ($0.expired ? " (expired)" : "")] }
        let widths = (0..<4).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, text in
                column == row.count - 1 ? text : text.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
