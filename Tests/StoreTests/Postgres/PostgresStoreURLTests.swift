import Foundation
import Store
import StorePostgres
import Testing

/// Store URLs and an unreachable server: no PostgreSQL server needed.
@Suite("Store on PostgreSQL: URLs and connecting")
struct PostgresStoreURLTests {
    @Test("a store URL gives user, host, port, database and sslmode; the port defaults to 5432")
    func parses() throws {
        let url = try PostgresStoreURL("postgres://meshward@db.example:6432/fleet?sslmode=require")
        #expect(url.user == "meshward")
        #expect(url.host == "db.example")
        #expect(url.port == 6432)
        #expect(url.database == "fleet")
        #expect(url.sslMode == .require)
        #expect(url.description == "postgres://meshward@db.example:6432/fleet?sslmode=require")
        #expect(try PostgresStoreURL("postgresql://ops@10.0.0.5/state").port == 5432)
        #expect(try PostgresStoreURL("postgresql://ops@10.0.0.5/state").sslMode == .prefer)
    }

    @Test(
        "a store URL that is not usable is refused, saying why",
        arguments: [
            ("postgres://meshward:hunter2@db/fleet", "holds a password"),
            ("postgres://db:5432/fleet", "names no user"),
            ("postgres://meshward@db:5432", "names no database"),
            ("postgres://meshward@db/fleet?sslmode=sometimes", "sslmode 'sometimes' is not one of"),
            ("postgres://meshward@db/fleet?connect_timeout=3", "parameter 'connect_timeout' is not supported"),
            ("mysql://meshward@db/fleet", "it is not a postgres:// URL"),
        ])
    func refused(text: String, reason: String) {
        #expect {
            _ = try PostgresStoreURL(text)
        } throws: { error in
            let description = "\(error)"
            return description.contains(reason) && !description.contains("hunter2")
        }
    }

    @Test("the password comes from PGPASSWORD, else the first matching passfile line")
    func password() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let passfile = directory + "/pgpass"
        try """
        # comment
        other:5432:fleet:meshward:wrong
        db.example:6432:*:meshward:from\\:file
        *:*:*:*:fallback
        """.write(toFile: passfile, atomically: true, encoding: .utf8)
        let url = try PostgresStoreURL("postgres://meshward@db.example:6432/fleet")
        #expect(url.password(environment: ["PGPASSFILE": passfile]) == "from:file")
        #expect(url.password(environment: ["PGPASSFILE": passfile, "PGPASSWORD": "env"]) == "env")
        let elsewhere = try PostgresStoreURL("postgres://ops@db.example:5432/fleet")
        #expect(elsewhere.password(environment: ["PGPASSFILE": passfile]) == "fallback")
        #expect(url.password(environment: ["PGPASSFILE": directory + "/missing"]) == nil)
    }

    @Test("a server that cannot be reached is an error naming the URL, host and port")
    func unreachable() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keyPath = directory + "/master.key"
        _ = FileManager.default.createFile(
            atPath: keyPath, contents: Data(repeating: 7, count: 32), attributes: [.posixPermissions: 0o600])
        let url = try PostgresStoreURL("postgres://meshward@127.0.0.1:1/fleet?sslmode=disable")
        let error = await #expect(throws: StoreError.self) {
            try await PostgresStore.open(url: url, masterKeyPath: keyPath, environment: [:], logger: testLogger)
        }
        #expect(error?.description.contains("postgres://meshward@127.0.0.1:1/fleet") == true)
        #expect(error?.description.contains("cannot connect to 127.0.0.1:1") == true)
    }

    @Test("a master key file that does not exist is refused before connecting")
    func missingMasterKey() async throws {
        let url = try PostgresStoreURL("postgres://meshward@127.0.0.1:1/fleet")
        let error = await #expect(throws: StoreError.self) {
            try await PostgresStore.open(
                url: url, masterKeyPath: "/nonexistent/master.key", environment: [:], logger: testLogger)
        }
        #expect(error?.description.contains("master key file /nonexistent/master.key does not exist") == true)
    }
}
