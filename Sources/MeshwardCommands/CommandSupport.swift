import ArgumentParser
import Controller
import DesiredState
import Foundation
import Logging
import Reconciler
import Telemetry

#if canImport(Glibc)
import Glibc
#endif

/// What every command that touches the fleet shares: logging set up once, errors printed as
/// `meshward: error: ...` with exit code 1, documents printed as text or JSON.
enum CommandSupport {
    /// Sets up logging to standard error: warnings by default, info with `--verbose`,
    /// or the level in `MESHWARD_LOG_LEVEL` (trace, debug, info, notice, warning, error); in
    /// `--log-format` (text lines leave the time out under systemd, where `JOURNAL_STREAM` is
    /// set and the journal stamps each line).
    static func logger(_ global: GlobalOptions) -> Logger {
        logger(verbose: global.verbose, format: global.logFormat)
    }

    /// The same, for commands without the global options (`agent run`).
    static func logger(verbose: Bool, format: LogFormat = .text) -> Logger {
        let level: Logger.Level
        if let text = ProcessInfo.processInfo.environment["MESHWARD_LOG_LEVEL"],
            let parsed = Logger.Level(rawValue: text)
        {
            level = parsed
        } else {
            level = verbose ? .info : .warning
        }
        let journal = ProcessInfo.processInfo.environment["JOURNAL_STREAM"].map { !$0.isEmpty } ?? false
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, format: format, journal: journal)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "meshward")
        logger.logLevel = level
        return logger
    }

    /// Runs `body`; any error is printed as one clear message on standard error and becomes
    /// exit code 1. With `--output json` an error document (`ErrorDocument`) also goes to
    /// standard output, so a pipeline that parses standard output always gets JSON.
    static func reportingErrors<T>(_ global: GlobalOptions, _ body: () async throws -> T) async throws -> T {
        try await reportingErrors(output: global.output, body)
    }

    /// The same, for commands without the global options (`agent run`, `agent wait-ready`).
    static func reportingErrors<T>(output: OutputFormat, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            report(error, output: output)
            throw ExitCode.failure
        }
    }

    /// Prints `error` as `reportingErrors` does.
    static func report(_ error: any Error, output: OutputFormat) {
        if let error = error as? ControllerError {
            printError(TerminalText.escaped(lines: error.description), prefixed: !(error.isInvalidSpec))
        } else {
            printError(TerminalText.escaped(lines: "\(error)"))
        }
        if output == .json, let text = try? DocumentEncoding.json(ErrorDocument(error)) { print(text) }
    }

    static func printError(_ message: String, prefixed: Bool = true) {
        var standardError = StandardError()
        print(prefixed ? "meshward: error: \(message)" : message, to: &standardError)
    }

    /// Prints a document as JSON.
    static func printJSON<T: Encodable>(_ document: T) throws {
        print(try DocumentEncoding.json(document))
    }

    /// True when standard error is a terminal, so progress lines help someone watching.
    static var isInteractive: Bool { isatty(STDERR_FILENO) == 1 }

    /// Reads a duration option with the spec's duration syntax (units from largest to smallest,
    /// each once), so the two never disagree on what a duration is; zero or less is refused.
    static func positiveDuration(_ text: String, option: String) throws -> Duration {
        switch SpecDuration.parse(text) {
        case .success(let duration) where duration > .zero: return duration
        case .success: throw ValidationError("\(option) must be longer than zero, not '\(text)'.")
        case .failure(let error): throw ValidationError("\(option): \(error.message).")
        }
    }

    /// Reads `--lock-timeout`: a duration in the spec's syntax, zero (`0s`) included, which
    /// refuses at once instead of waiting.
    fileprivate static func lockTimeout(_ text: String) throws -> Duration {
        switch SpecDuration.parse(text) {
        case .success(let duration): return duration
        case .failure(let error): throw ValidationError("--lock-timeout: \(error.message).")
        }
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}

extension ControllerError {
    var isInvalidSpec: Bool {
        if case .invalidSpec = self { return true }
        return false
    }
}

/// `--lock-timeout`, for the commands that take the Store's lease to change kernels.
struct LeaseWaitOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "How long to wait while another controller holds the Store's lease, e.g. 30s, 5m; 0s refuses at once.",
            valueName: "duration"),
        transform: CommandSupport.lockTimeout)
    var lockTimeout: Duration = .seconds(60)
}
