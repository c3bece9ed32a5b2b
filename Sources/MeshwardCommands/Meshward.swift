import ArgumentParser
import Controller
import Foundation
import Reconciler

/// The `meshward` command: keeps IPsec configured on every node of a fleet from a declared spec.
///
/// A library, so that the `meshward` executable is one line and the test kit's `meshward-faulty`
/// runs exactly these commands with a fault armed.
public struct Meshward: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "meshward",
        abstract: "Keeps IPsec configured on every node of a fleet from a declared spec.",
        discussion:
            "Exit codes: 0 success, 1 failure (invalid spec, unreachable node, kernel error, usage error), "
            + "2 changes pending.",
        version: MeshwardVersion.current,
        subcommands: [
            ValidateCommand.self, PlanCommand.self, ApplyCommand.self, ReconcileCommand.self, RekeyCommand.self,
            StatusCommand.self, HistoryCommand.self, AgentCommand.self, StoreCommand.self,
        ]
    )

    public init() {}

    /// Parses and runs the subcommand. A usage error (unknown option, missing or malformed value)
    /// exits 1 like every other failure (argument-parser's default would be 64), with its message
    /// on standard error and, under `--output json`, an error document on standard output.
    /// The observers every controller of this run is made with (`GlobalOptions.controller`):
    /// none for `meshward`; `meshward-faulty` gives the test kit's faults.
    @TaskLocal static var observers = ControllerObservers()

    public static func runCommandLine(observers: ControllerObservers = ControllerObservers()) async {
        await $observers.withValue(observers) { await runParsedCommandLine() }
    }

    private static func runParsedCommandLine() async {
        let command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exitForUsage(error)
        }
        do {
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                var synchronous = command
                try synchronous.run()
            }
        } catch {
            exitForUsage(error)
        }
    }

    private static func exitForUsage(_ error: any Error) -> Never {
        guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
        FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
        if CommandLineOutput.wantsJSON(CommandLine.arguments),
            let text = try? DocumentEncoding.json(ErrorDocument(message: message(for: error)))
        {
            print(text)
        }
        exit(withError: ExitCode.failure)
    }
}

/// What the raw arguments ask for, for errors found before they could be parsed.
enum CommandLineOutput {
    /// True when the arguments hold `--output json` or `--output=json`.
    static func wantsJSON(_ arguments: [String]) -> Bool {
        for (index, argument) in arguments.enumerated() {
            if argument == "--output=json" { return true }
            if argument == "--output", index + 1 < arguments.count, arguments[index + 1] == "json" { return true }
        }
        return false
    }
}
