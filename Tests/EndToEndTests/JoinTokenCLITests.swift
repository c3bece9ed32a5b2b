import Crypto
import Foundation
import Testing
import X509

/// `meshward agent token`, `agent tokens` and `agent revoke-token` through the built binary, on
/// SQLite in the state directory and on PostgreSQL (`--store`).
@Suite("Join tokens from the command line")
struct JoinTokenCLITests {
    static let spec = """
        version: 1
        cluster: joining
        nodes:
          - { name: web-1, addresses: [198.18.0.1], endpoint: agent }
          - { name: db-1, addresses: [198.18.0.2], endpoint: "agent:198.18.0.2:7444" }
          - { name: sim-1, addresses: [198.18.0.3], endpoint: sim }
        flows:
          - { name: web-db, from: { name: web-1 }, to: { name: db-1 } }
        """

    /// The parts of a printed token: id, secret, CA fingerprint.
    static func parts(_ line: String) throws -> (id: String, secret: String, ca: String) {
        let fields = line.trimmingCharacters(in: .newlines).split(separator: ".").map(String.init)
        try #require(fields.count == 4 && fields[0] == "mwjoin1", "not a join token: \(line)")
        return (fields[1], fields[2], fields[3])
    }

    /// The stores a test runs on: SQLite always, PostgreSQL when the test server is set.
    static var stores: [Bool] { TestDatabase.server == nil ? [false] : [false, true] }

    /// A CLI on SQLite, or on a fresh PostgreSQL database (which lives as long as the caller
    /// keeps it), and the test's spec written out.
    static func cli(postgres: Bool) async throws -> (MeshwardCLI, String, TestDatabase?) {
        let database = postgres ? try await TestDatabase.make() : nil
        return (try MeshwardCLI(database: database), try MeshwardCLI.writeSpec(spec), database)
    }

    @Test(
        "agent token prints one mwjoin1 line: a 16-hex id, a 32-byte base64url secret, and the SHA-256 of the cluster CA certificate agent credentials writes",
        arguments: stores)
    func tokenFormat(postgres: Bool) async throws {
        let (cli, spec, database) = try await Self.cli(postgres: postgres)
        defer { withExtendedLifetime(database) { cli.removeState() } }
        let printed = try await cli.run("agent", "token", spec, "--node", "web-1")
        #expect(printed.status == 0, "\(printed.error)")
        let lines = printed.output.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[1].isEmpty, "not one line: \(lines.count - 1) lines")
        let (id, secret, ca) = try Self.parts(printed.output)
        #expect(id.count == 16 && id.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(secret.count == 43 && !secret.contains("=") && !secret.contains("+") && !secret.contains("/"))
        var standard = secret.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += "="
        #expect(Data(base64Encoded: standard)?.count == 32)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-agent-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let credentials = try await cli.run("agent", "credentials", spec, "--node", "db-1", "--out", directory)
        try #require(credentials.status == 0, "\(credentials.error)")
        let caPEM = try String(contentsOfFile: directory + "/ca.pem", encoding: .utf8)
        let certificate = try Certificate(pemEncoded: caPEM)
        let der = try certificate.serializeAsPEM().derBytes
        let fingerprint = SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
        #expect(ca == fingerprint)

        // A second token is another id and secret, pinning the same CA.
        let second = try Self.parts(try await cli.run("agent", "token", spec, "--node", "web-1").output)
        #expect(second.id != id && second.secret != secret && second.ca == ca)
    }

    @Test(
        "agent tokens lists unspent tokens by id, node, creation and expiry (--ttl), in a table and as JSON, never a secret",
        arguments: stores)
    func listed(postgres: Bool) async throws {
        let (cli, spec, database) = try await Self.cli(postgres: postgres)
        defer { withExtendedLifetime(database) { cli.removeState() } }
        let empty = try await cli.run("agent", "tokens", spec)
        #expect(empty.status == 0, "\(empty.error)")
        #expect(empty.output == "no unspent join tokens\n")

        let web = try Self.parts(try await cli.run("agent", "token", spec, "--node", "web-1").output)
        let db = try Self.parts(try await cli.run("agent", "token", spec, "--node", "db-1", "--ttl", "2d").output)
        let table = try await cli.run("agent", "tokens", spec)
        #expect(table.status == 0, "\(table.error)")
        let rows = table.output.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(rows.first == ["ID", "NODE", "CREATED", "EXPIRES"])
        #expect(rows.dropFirst().map { Array($0.prefix(2)) } == [[web.id, "web-1"], [db.id, "db-1"]])
        #expect(!table.output.contains(web.secret) && !table.output.contains(db.secret))

        let (status, document) = try await cli.json("agent", "tokens", spec)
        #expect(status == 0)
        let tokens = try #require(document["tokens"] as? [[String: Any]])
        #expect(tokens.map { $0["id"] as? String } == [web.id, db.id])
        #expect(tokens.map { $0["node"] as? String } == ["web-1", "db-1"])
        #expect(tokens.map { $0["expired"] as? Bool } == [false, false])
        let parser = ISO8601DateFormatter()
        for (token, ttl) in zip(tokens, [3600.0, 2 * 86_400.0]) {
            let created = try #require((token["created"] as? String).flatMap(parser.date(from:)))
            let expires = try #require((token["expires"] as? String).flatMap(parser.date(from:)))
            // ISO 8601 to the second: the lifetime is the TTL within the rounding of both ends.
            #expect(abs(expires.timeIntervalSince(created) - ttl) <= 1, "\(token)")
            #expect(Set(token.keys) == ["id", "node", "created", "expires", "expired"])
        }
        let json = try await cli.run("agent", "tokens", spec, "--output", "json")
        #expect(!json.output.contains(web.secret) && !json.output.contains(db.secret))
    }

    @Test(
        "agent token refuses a node missing from the spec and a node without an agent endpoint, naming the node, and stores no token",
        arguments: stores)
    func refusedNodes(postgres: Bool) async throws {
        let (cli, spec, database) = try await Self.cli(postgres: postgres)
        defer { withExtendedLifetime(database) { cli.removeState() } }
        let missing = try await cli.run("agent", "token", spec, "--node", "cache-9")
        #expect(missing.status == 1)
        #expect(missing.output.isEmpty)
        #expect(missing.error.contains("cache-9"), "\(missing.error)")
        let simulated = try await cli.run("agent", "token", spec, "--node", "sim-1")
        #expect(simulated.status == 1)
        #expect(simulated.output.isEmpty)
        #expect(
            simulated.error.contains("node sim-1 has endpoint 'sim', not an agent"), "\(simulated.error)")
        let zero = try await cli.run("agent", "token", spec, "--node", "web-1", "--ttl", "0s")
        #expect(zero.status != 0)
        #expect(zero.error.contains("--ttl must be longer than zero"), "\(zero.error)")
        #expect(try await cli.run("agent", "tokens", spec).output == "no unspent join tokens\n")
    }

    @Test(
        "agent revoke-token drops the token from agent tokens; revoking it again or an unknown id fails naming the id",
        arguments: stores)
    func revoked(postgres: Bool) async throws {
        let (cli, spec, database) = try await Self.cli(postgres: postgres)
        defer { withExtendedLifetime(database) { cli.removeState() } }
        let gone = try Self.parts(try await cli.run("agent", "token", spec, "--node", "web-1").output)
        let kept = try Self.parts(try await cli.run("agent", "token", spec, "--node", "web-1").output)
        let revoke = try await cli.run("agent", "revoke-token", spec, gone.id)
        #expect(revoke.status == 0, "\(revoke.error)")
        #expect(revoke.output == "revoked join token \(gone.id)\n")
        let (_, document) = try await cli.json("agent", "tokens", spec)
        #expect((document["tokens"] as? [[String: Any]])?.map { $0["id"] as? String } == [kept.id])

        let again = try await cli.run("agent", "revoke-token", spec, gone.id)
        #expect(again.status == 1)
        #expect(again.error.contains("join token \(gone.id) was revoked at"), "\(again.error)")
        let unknown = try await cli.run("agent", "revoke-token", spec, "00000000deadbeef")
        #expect(unknown.status == 1)
        #expect(unknown.error.contains("join token 00000000deadbeef is unknown"), "\(unknown.error)")
        let noID = try await cli.run("agent", "revoke-token", spec)
        #expect(noID.status != 0)
        #expect(noID.error.contains("then the id of the token to revoke"), "\(noID.error)")
    }

    @Test(
        "a join token's secret appears only in the line agent token printed: in no other output, trace log or state file"
    )
    func secretNeverStored() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let spec = try MeshwardCLI.writeSpec(Self.spec)
        let trace = ["MESHWARD_LOG_LEVEL": "trace"]
        var captures: [(String, Data)] = []
        var secrets: [[UInt8]] = []
        for format in ["text", "json"] {
            let printed = try await cli.run(
                ["agent", "token", spec, "--node", "web-1", "--verbose", "--log-format", format], environment: trace)
            try #require(printed.status == 0, "\(printed.error)")
            let secret = try Self.parts(printed.output).secret
            var standard = secret.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            standard += "="
            secrets.append([UInt8](try #require(Data(base64Encoded: standard))))
            captures.append(("the log of agent token --log-format \(format)", Data(printed.error.utf8)))
            for command in [["agent", "tokens", spec], ["agent", "tokens", spec, "--output", "json"]] {
                let result = try await cli.run(command + ["--verbose", "--log-format", format], environment: trace)
                #expect(result.status == 0, "\(command): \(result.error)")
                captures.append(("the output of \(command)", Data((result.output + result.error).utf8)))
            }
        }
        let id = try #require(
            (try await cli.json("agent", "tokens", spec).1["tokens"] as? [[String: Any]])?.first?["id"] as? String)
        let revoke = try await cli.run(["agent", "revoke-token", spec, id, "--verbose"], environment: trace)
        captures.append(("the output of agent revoke-token", Data((revoke.output + revoke.error).utf8)))
        var files: [(String, Data)] = []
        let directory = cli.stateDirectory.path
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            files.append((name, try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))))
        }
        #expect(files.contains { $0.0 == "state.sqlite" })
        // The verifier (SHA-256 of the secret) is what the Store keeps: the search finds it
        // there, so a search that finds no secret is one that looked in the right place.
        let verifier = [UInt8](SHA256.hash(data: secrets[0]))
        let storeFiles = files.filter { $0.0.hasPrefix("state.sqlite") }
        #expect(!SecretsTests.findings(of: verifier, in: storeFiles).isEmpty, "the verifier is not in the Store")
        for secret in secrets {
            for finding in SecretsTests.findings(of: secret, in: captures + files) {
                Issue.record("a join token's secret appears as \(finding)")
            }
        }
    }
}
