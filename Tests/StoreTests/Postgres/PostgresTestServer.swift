import Foundation
import MeshwardTestSupport
import PostgresNIO
import StorePostgres
import Testing

/// The PostgreSQL server the tests may use: `MESHWARD_TEST_POSTGRES` (a `postgres://` URL, as
/// `scripts/test-postgres env` prints). Without it the PostgreSQL cases are skipped.
enum PostgresTestServer {
    /// Why the PostgreSQL cases are skipped, for the test output.
    static let skipReason: Comment =
        "MESHWARD_TEST_POSTGRES is not set: the PostgreSQL Store is not tested (scripts/test-postgres start)"

    static let url: PostgresStoreURL? = {
        guard let text = ProcessInfo.processInfo.environment["MESHWARD_TEST_POSTGRES"], !text.isEmpty else {
            return nil
        }
        do {
            return try PostgresStoreURL(text)
        } catch {
            fatalError("MESHWARD_TEST_POSTGRES: \(error)")
        }
    }()

    /// Runs `body` on a connection of its own to the test server, with `schema` first on the
    /// search path.
    @discardableResult
    static func withConnection<T: Sendable>(
        schema: String?, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        guard let url else { throw PostgresTestServerError.notConfigured }
        var configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user,
            password: ProcessInfo.processInfo.environment["PGPASSWORD"], database: url.database, tls: .disable)
        if let schema { configuration.options.additionalStartupParameters = [("search_path", schema)] }
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: testLogger)
        do {
            let value = try await body(connection)
            try await connection.close()
            return value
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Drops a test's schema, in the background (a database goes away in a `deinit`).
    static func drop(schema: String) {
        Task.detached {
            _ = try? await withConnection(schema: nil) { connection in
                try await connection.query(
                    PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE"), logger: testLogger)
            }
        }
    }

    /// The `pg_dump` to dump a test's schema with: on the PATH, else the newest under
    /// /usr/lib/postgresql (Debian's layout).
    static let pgDump: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let onPath = path.split(separator: ":").map { "\($0)/pg_dump" }
        let versions =
            ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }
            .map { "/usr/lib/postgresql/\($0)/bin/pg_dump" }
        return (versions + onPath).first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// The schema's data and definitions as `pg_dump` writes them.
    static func dump(schema: String) async throws -> String {
        guard let url, let pgDump else { throw PostgresTestServerError.notConfigured }
        let dumped = try await ProcessRun(
            running: URL(fileURLWithPath: pgDump),
            [
                "--host", url.host, "--port", String(url.port), "--username", url.user, "--schema", schema,
                "--no-password", url.database,
            ])
        guard dumped.status == 0 else { throw PostgresTestServerError.dumpFailed(dumped.status) }
        return dumped.output
    }

    /// A fresh schema name.
    static func freshSchema() -> String {
        "meshward_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }
}

enum PostgresTestServerError: Error {
    case notConfigured
    case dumpFailed(Int32)
}
