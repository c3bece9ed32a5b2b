import Foundation
import Testing

/// A fresh database on the PostgreSQL test server (`MESHWARD_TEST_POSTGRES`) for one
/// end-to-end test, with a master key file of its own, migrated with `meshward store migrate`;
/// dropped when this value goes away.
final class TestDatabase: Sendable {
    /// The server's URL, or nil when the PostgreSQL tests are skipped.
    static let server = PostgresStoreCLITests.testServer
    static let skipReason: Comment =
        "MESHWARD_TEST_POSTGRES is not set: the PostgreSQL Store is not tested (scripts/test-postgres start)"

    /// The database's URL (no password: the server trusts local connections, or PGPASSWORD).
    let url: String
    let name: String
    private let keyDirectory: String
    let masterKeyFile: String
    private let server: String

    /// `--store URL --master-key-file FILE`.
    var arguments: [String] { ["--store", url, "--master-key-file", masterKeyFile] }

    private init(server: String, name: String, url: String) throws {
        self.server = server
        self.name = name
        self.url = url
        keyDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-key-\(UUID())").path
        try FileManager.default.createDirectory(atPath: keyDirectory, withIntermediateDirectories: true)
        masterKeyFile = keyDirectory + "/cluster.key"
        var random = SystemRandomNumberGenerator()
        let key = Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })
        guard
            FileManager.default.createFile(atPath: masterKeyFile, contents: key, attributes: [.posixPermissions: 0o600])
        else { throw CocoaError(.fileWriteUnknown) }
    }

    /// Creates the database on the test server and migrates it.
    static func make() async throws -> TestDatabase {
        try await make(on: try #require(Self.server, "MESHWARD_TEST_POSTGRES is not set"))
    }

    /// Creates the database on `server` (a `postgres://` URL of its default database) and migrates it.
    static func make(on server: String) async throws -> TestDatabase {
        let name = "meshward_e2e_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await PostgresStoreCLITests.execute("CREATE DATABASE \(name)", on: server)
        var components = try #require(URLComponents(string: server))
        components.path = "/" + name
        let database = try TestDatabase(server: server, name: name, url: try #require(components.string))
        let migrate = try await MeshwardCLI.capture(
            MeshwardCLI.binary,
            ["store", "migrate", "--state-dir", FileManager.default.temporaryDirectory.path] + database.arguments)
        try #require(migrate.status == 0, "store migrate: \(migrate.error)")
        return database
    }

    deinit {
        try? FileManager.default.removeItem(atPath: keyDirectory)
        let server = self.server
        let name = self.name
        Task.detached { try? await PostgresStoreCLITests.execute("DROP DATABASE \(name) WITH (FORCE)", on: server) }
    }
}

/// The Stores an end-to-end test runs on: SQLite in the state directory, and PostgreSQL when
/// `MESHWARD_TEST_POSTGRES` names a server.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite = "SQLite"
    case postgres = "PostgreSQL"

    static var available: [StoreKind] { TestDatabase.server == nil ? [.sqlite] : allCases }

    var testDescription: String { rawValue }

    /// A fresh database for this kind: nil for SQLite (the state directory holds it).
    func makeDatabase() async throws -> TestDatabase? {
        switch self {
        case .sqlite: nil
        case .postgres: try await TestDatabase.make()
        }
    }
}
