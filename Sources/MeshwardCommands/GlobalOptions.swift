import ArgumentParser
import Logging
import Reconciler
import Telemetry

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The options every command accepts: `--state-dir`, `--master-key-file`, `--output`,
/// `--verbose`, `--log-format`.
///
/// Include with `@OptionGroup var global: GlobalOptions`.
struct GlobalOptions: ParsableArguments {
    /// The environment variable that sets the state directory when `--state-dir` is absent.
    static let stateDirectoryVariable = "MESHWARD_STATE_DIR"

    @Option(
        name: .customLong("state-dir"),
        help: ArgumentHelp(
            "The directory holding Meshward's state (default: $MESHWARD_STATE_DIR, else ./.meshward).",
            valueName: "dir"))
    var stateDirectoryOption: String?

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

    /// The controller for these options: the state directory and the master key file.
    func controller(logger: Logger, recorder: any ReconcileRecorder = DiscardingRecorder()) -> MeshwardController {
        MeshwardController(
            stateDirectory: stateDirectory, masterKeyPath: masterKeyFile, logger: logger, recorder: recorder)
    }
}
