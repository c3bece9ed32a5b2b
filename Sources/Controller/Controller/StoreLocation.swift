import Logging
import Reconciler
import Store
import StorePostgres

/// Where the Store lives: SQLite in the state directory (the embedded default), or PostgreSQL
/// at a `postgres://` URL, shared by controllers on several machines (`--store`, or
/// `MESHWARD_STORE`).
public enum StoreLocation: Sendable, Hashable, CustomStringConvertible {
    case stateDirectory
    case postgres(PostgresStoreURL)

    /// The location `--store` (or `MESHWARD_STORE`) names: nil or empty for the state directory;
    /// a malformed URL, or one with a password in it, is refused with the reason.
    public init(_ text: String?) throws(PostgresStoreURLError) {
        guard let text, !text.isEmpty else {
            self = .stateDirectory
            return
        }
        self = .postgres(try PostgresStoreURL(text))
    }

    public var description: String {
        switch self {
        case .stateDirectory: "the state directory"
        case .postgres(let url): url.description
        }
    }

    /// Opens the Store here: the one place that names a conformer. SQLite seals under
    /// `masterKeyPath` or the directory's own `master.key`; PostgreSQL needs `masterKeyPath`
    /// (every replica shares the operator's key file) and a schema `meshward store migrate`
    /// brought up to date.
    func open(stateDirectory: String, masterKeyPath: String?, logger: Logger) async throws -> any ControllerStore {
        switch self {
        case .stateDirectory:
            return try StateStore.open(directory: stateDirectory, masterKeyPath: masterKeyPath, logger: logger)
        case .postgres(let url):
            guard let masterKeyPath else { throw ControllerError.masterKeyFileRequired(store: url.description) }
            let store = try await PostgresStore.open(url: url, masterKeyPath: masterKeyPath, logger: logger)
            // The state directory still holds the simulated fleet's kernels.
            try StateDirectory(path: stateDirectory, masterKeyPath: masterKeyPath).prepareDirectory()
            return store
        }
    }

    /// Applies the Store's pending migrations and returns their names; SQLite migrates itself
    /// on open, so this opens it.
    public func migrate(stateDirectory: String, masterKeyPath: String?, logger: Logger) async throws -> [String] {
        switch self {
        case .stateDirectory:
            _ = try StateStore.open(directory: stateDirectory, masterKeyPath: masterKeyPath, logger: logger)
            return []
        case .postgres(let url):
            guard let masterKeyPath else { throw ControllerError.masterKeyFileRequired(store: url.description) }
            return try await PostgresStore.migrate(url: url, masterKeyPath: masterKeyPath, logger: logger)
        }
    }
}
