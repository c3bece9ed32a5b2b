import ArgumentParser
import Controller
import Logging
import Reconciler
import Telemetry

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The options every command accepts: `--state-dir`, `--store`, `--master-key-file`, `--output`,
/// `--verbose`, `--log-format`.
///
/// Include with `@OptionGroup var global: GlobalOptions`.
struct GlobalOptions: ParsableArguments {
    /// The environment variable that sets the state directory when `--state-dir` is absent.
    static let stateDirectoryVariable = "MESHWARD_STATE_DIR"
    /// The environment variable that names the Store when `--store` is absent.
    static let storeVariable = "MESHWARD_STORE"

    @Option(
        name: .customLong("state-dir"),
        help: ArgumentHelp(
            "The directory holding Meshward's state (default: $MESHWARD_STATE_DIR, else ./.meshward).",
            valueName: "dir"))
    var stateDirectoryOption: String?

    @Option(
        name: .customLong("store"),
        help: ArgumentHelp(
            "The Store on PostgreSQL, shared by controllers on several machines: postgres://USER@HOST:PORT/DB, "
                + "with ?sslmode=require for TLS; the password comes from PGPASSWORD or a passfile, never the URL "
                + "(default: $MESHWARD_STORE, else SQLite in the state directory). Needs --master-key-file.",
            valueName: "url"))
    var storeOption: String?

    @Option(
        name: .customLong("master-key-file"),
        help: ArgumentHelp(
            "The master key that seals the Store's keys: an existing 32-byte file of mode 0600 "
                + "(default: master.key in the state directory, created on first use).",
            valueName: "file"))
    var masterKeyFile: String?

    @Option(name: .long, help: "Output format: text or json.")
    var output: OutputFormat = .text

    @Flag(name: .long, help: "Print more detail.")
    var verbose = false

    @Option(
        name: .customLong("log-format"),
        help: "Log lines on standard error: text (for people) or json (one object per line, for machines).")
    var logFormat: LogFormat = .text

    /// The state directory: `--state-dir`, else `$MESHWARD_STATE_DIR`, else `./.meshward`.
    var stateDirectory: String {
        if let stateDirectoryOption { return stateDirectoryOption }
        if let value = getenv(Self.stateDirectoryVariable), let text = String(validatingCString: value), !text.isEmpty {
            return text
        }
        return "./.meshward"
    }

    /// The Store's URL as given: `--store`, else `$MESHWARD_STORE`; nil for the state directory.
    var storeText: String? {
        if let storeOption { return storeOption }
        if let value = getenv(Self.storeVariable), let text = String(validatingCString: value), !text.isEmpty {
            return text
        }
        return nil
    }

    /// Where the Store lives; `validate()` refused a URL that does not parse.
    var storeLocation: StoreLocation {
        (try? StoreLocation(storeText)) ?? .stateDirectory
    }

    /// Refuses a malformed store URL, one with a password, and a PostgreSQL Store without
    /// `--master-key-file` (the key never enters the database, so it is never created there).
    func validate() throws {
        let location: StoreLocation
        do {
            location = try StoreLocation(storeText)
        } catch {
            throw ValidationError(
                "\(error.description)" + (storeOption == nil ? " (from $\(Self.storeVariable))" : ""))
        }
        if case .postgres(let url) = location, masterKeyFile == nil {
            throw ValidationError(ControllerError.masterKeyFileRequired(store: url.description).description)
        }
    }

    /// Runs `body` with the controller for these options, then closes the controller's agent
    /// connections (each cleanly) before the command goes on to print and exit, whether `body`
    /// returned or threw.
    func withController<T>(
        logger: Logger, _ body: (MeshwardController) async throws -> T
    ) async throws -> T {
        let controller = controller(logger: logger)
        do {
            let result = try await body(controller)
            await controller.close()
            return result
        } catch {
            await controller.close()
            throw error
        }
    }

    /// The controller for these options: the state directory, the Store and the master key file.
    func controller(logger: Logger, recorder: any ReconcileRecorder = DiscardingRecorder()) -> MeshwardController {
        MeshwardController(
            stateDirectory: stateDirectory, store: storeLocation, masterKeyPath: masterKeyFile, logger: logger,
            recorder: recorder, observers: Meshward.observers)
    }
}
