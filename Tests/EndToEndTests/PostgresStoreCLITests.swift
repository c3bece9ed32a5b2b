import Foundation
import PostgresNIO
import Testing

/// `--store postgres://…` on the command line: refused without a master key file or with a
/// password in the URL (no server needed), and, on the test server, `store migrate` first, then
/// every command that opens the Store.
@Suite("The Store on PostgreSQL from the command line")
struct PostgresStoreCLITests {
    static let testServer = ProcessInfo.processInfo.environment["MESHWARD_TEST_POSTGRES"].flatMap {
        $0.isEmpty ? nil : $0
    }

    @Test("--store without --master-key-file, with a password or malformed is refused by every command, exit 1")
    func refusedWithoutKeyFile() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = MeshwardCLI.example("minimal.yaml")
        for command in MasterKeyFileTests.storeCommands(spec) + [["store", "migrate"]] {
            let result = try await cli.run(command + ["--store", "postgres://meshward@127.0.0.1:1/fleet"])
            #expect(result.status == 1, "\(command)")
            #expect(
                result.error.contains(
                    "the Store at postgres://meshward@127.0.0.1:1/fleet needs --master-key-file FILE"), "\(command)")
        }
        let password = try await cli.run("status", "--store", "postgres://meshward:hunter2@db/fleet")
        #expect(password.status == 1)
        #expect(password.error.contains("the store URL holds a password"))
        #expect(!password.error.contains("hunter2"))
        let fromEnvironment = try await cli.run("status", environment: ["MESHWARD_STORE": "postgres://db/fleet"])
        #expect(fromEnvironment.status == 1)
        #expect(fromEnvironment.error.contains("names no user"))
        #expect(fromEnvironment.error.contains("from $MESHWARD_STORE"))
    }

    @Test(
        "a database not migrated is refused naming store migrate; after it, apply, plan and status run on it",
        .enabled(if: testServer != nil, "MESHWARD_TEST_POSTGRES is not set: the PostgreSQL Store is not tested"))
    func migrateThenApply() async throws {
        let server = try #require(Self.testServer)
        let database = "meshward_e2e_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await Self.execute("CREATE DATABASE \(database)", on: server)
        defer { Task.detached { try? await Self.execute("DROP DATABASE \(database) WITH (FORCE)", on: server) } }
        let url = try #require(
            URLComponents(string: server).map { components -> String in
                var copy = components
                copy.path = "/" + database
                return copy.string ?? server
            })
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let keys = try MasterKeyFileTests.KeyDirectory()
        let key = try keys.key("cluster.key")
        let spec = MeshwardCLI.example("minimal.yaml")
        let store = ["--store", url, "--master-key-file", key]

        let early = try await cli.run(["status"] + store)
        #expect(early.status == 1)
        #expect(early.error.contains("holds no Meshward schema; create it with 'meshward store migrate"))

        let migrate = try await cli.run(["store", "migrate"] + store)
        #expect(migrate.status == 0, "\(migrate.error)")
        #expect(migrate.output.contains("1-channels-and-generations"))
        let again = try await cli.run(["store", "migrate"] + store)
        #expect(again.output.contains("is up to date"), "\(again.output)\(again.error)")

        let apply = try await cli.run(["apply", spec] + store)
        #expect(apply.status == 0, "\(apply.error)")
        let plan = try await cli.run(["plan", spec, "--detailed-exitcode"] + store)
        #expect(plan.status == 0, "\(plan.output)\(plan.error)")
        let status = try await cli.run(["status"] + store)
        #expect(status.status == 0, "\(status.error)")
        let history = try await cli.run(["history"] + store)
        #expect(history.status == 0, "\(history.error)")
        #expect(history.output.contains("apply"))
        // Nothing went to SQLite in the state directory.
        #expect(!FileManager.default.fileExists(atPath: cli.stateDirectory.path + "/state.sqlite"))
    }

    /// Runs one statement on the test server's own database.
    static func execute(_ sql: String, on server: String) async throws {
        let components = try #require(URLComponents(string: server))
        let configuration = PostgresConnection.Configuration(
            host: components.host ?? "127.0.0.1", port: components.port ?? 5432, username: components.user ?? "",
            password: ProcessInfo.processInfo.environment["PGPASSWORD"],
            database: String(components.path.dropFirst()), tls: .disable)
        let connection = try await PostgresConnection.connect(
            configuration: configuration, id: 0, logger: Logger(label: "meshward.e2e"))
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "meshward.e2e"))
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }
}

/// The cluster's credentials on PostgreSQL: agent endpoints are no longer refused there.
@Suite("Agent credentials on PostgreSQL")
struct PostgresCredentialsCLITests {
    @Test(
        "agent credentials on PostgreSQL: two controllers with their own state directories issue from one cluster CA",
        .enabled(if: TestDatabase.server != nil, TestDatabase.skipReason))
    func oneClusterCA() async throws {
        let database = try await TestDatabase.make()
        let first = try MeshwardCLI(database: database)
        let second = try MeshwardCLI(database: database)
        defer {
            first.removeState()
            second.removeState()
        }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-agent-dirs-\(UUID())")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: out) }
        let spec = MeshwardCLI.example("three-tier.yaml")
        let web = try await first.run("agent", "credentials", spec, "--node", "web-1", "--out", out.path + "/web-1")
        #expect(web.status == 0, "\(web.error)")
        let app = try await second.run("agent", "credentials", spec, "--node", "app-1", "--out", out.path + "/app-1")
        #expect(app.status == 0, "\(app.error)")
        let webCA = try String(contentsOfFile: out.path + "/web-1/ca.pem", encoding: .utf8)
        let appCA = try String(contentsOfFile: out.path + "/app-1/ca.pem", encoding: .utf8)
        #expect(webCA.contains("BEGIN CERTIFICATE"))
        #expect(webCA == appCA, "the two controllers made two cluster CAs")
        // Nothing went to SQLite in either state directory.
        #expect(!FileManager.default.fileExists(atPath: first.stateDirectory.path + "/state.sqlite"))
        #expect(!FileManager.default.fileExists(atPath: second.stateDirectory.path + "/state.sqlite"))
        withExtendedLifetime(database) {}
    }
}
