import ArgumentParser

/// The `meshward` command: keeps IPsec configured on every node of a fleet from a declared spec.
@main
struct Meshward: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshward",
        abstract: "Keeps IPsec configured on every node of a fleet from a declared spec.",
        discussion:
            "Exit codes: 0 success, 1 failure (invalid spec, unreachable node, kernel error), 2 changes pending.",
        subcommands: [
            ValidateCommand.self, PlanCommand.self, ApplyCommand.self, ReconcileCommand.self, RekeyCommand.self,
            StatusCommand.self, HistoryCommand.self,
        ]
    )
}
