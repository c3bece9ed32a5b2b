import ArgumentParser
import Reconciler

/// `meshward store`: the Store itself, apart from the fleet.
struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Manage the Store itself.",
        subcommands: [StoreMigrateCommand.self])
}

/// `meshward store migrate`: applies the Store's pending schema migrations.
struct StoreMigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the Store's pending schema migrations (named, append-only, all in one transaction).",
        discussion:
            "A Store on PostgreSQL (--store) is migrated only by this command: every other command refuses a "
            + "database whose schema is older or newer than it knows. A SQLite Store in the state directory "
            + "migrates itself when opened; this opens (and creates) it.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = CommandSupport.logger(global)
        let location = global.storeLocation
        let applied = try await CommandSupport.reportingErrors(global) {
            try await location.migrate(
                stateDirectory: global.stateDirectory, masterKeyPath: global.masterKeyFile, logger: logger)
        }
        switch global.output {
        case .json: try CommandSupport.printJSON(StoreMigrateDocument(store: location.description, applied: applied))
        case .text:
            if applied.isEmpty {
                print("the Store at \(location) is up to date")
            } else {
                print("applied \(applied.count) migration\(applied.count == 1 ? "" : "s") to \(location):")
                for name in applied { print("  \(name)") }
            }
        }
    }
}

/// What `meshward store migrate --output json` prints.
struct StoreMigrateDocument: Encodable {
    /// The Store, as messages name it (never with a password).
    var store: String
    /// The migrations applied, in order; empty when it was up to date.
    var applied: [String]
}
