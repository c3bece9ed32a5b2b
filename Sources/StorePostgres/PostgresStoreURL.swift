import Foundation
import PostgresNIO

/// Where a PostgreSQL Store lives: `postgres://USER@HOST:PORT/DB`, optionally `?sslmode=...`.
///
/// The password never comes from the URL (a command line is visible to every user of the host):
/// it is `PGPASSWORD`, or the matching line of the passfile (`PGPASSFILE`, else `~/.pgpass`, in
/// libpq's `host:port:database:user:password` format with `*` wildcards). `sslmode` is `disable`,
/// `prefer` (the default, as libpq's), `require` (TLS, the server's certificate not verified) or
/// `verify-full` (TLS, certificate and host name verified).
public struct PostgresStoreURL: Sendable, Hashable, CustomStringConvertible {
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable
        case prefer
        case require
        case verifyFull = "verify-full"
    }

    public var user: String
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: SSLMode

    /// True when `text` names a PostgreSQL Store (its scheme is `postgres` or `postgresql`).
    public static func isPostgres(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Parses a store URL; the error says what is wrong with it and what a valid one looks like.
    public init(_ text: String) throws(PostgresStoreURLError) {
        guard Self.isPostgres(text), let components = URLComponents(string: text) else {
            throw .malformed(text, reason: "it is not a postgres:// URL")
        }
        guard components.password == nil else {
            throw .passwordInURL
        }
        guard let user = components.user, !user.isEmpty else {
            throw .malformed(text, reason: "it names no user (postgres://USER@HOST:PORT/DB)")
        }
        guard let host = components.host, !host.isEmpty else {
            throw .malformed(text, reason: "it names no host (postgres://USER@HOST:PORT/DB)")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !database.isEmpty, !database.contains("/") else {
            throw .malformed(text, reason: "it names no database (postgres://USER@HOST:PORT/DB)")
        }
        var sslMode = SSLMode.prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value, let mode = SSLMode(rawValue: value) else {
                    throw .malformed(
                        text,
                        reason: "sslmode '\(item.value ?? "")' is not one of "
                            + SSLMode.allCases.map(\.rawValue).joined(separator: ", "))
                }
                sslMode = mode
            default:
                throw .malformed(text, reason: "parameter '\(item.name)' is not supported (only sslmode is)")
            }
        }
        self.user = user
        self.host = host
        self.port = components.port ?? 5432
        self.database = database
        self.sslMode = sslMode
    }

    /// The URL as given, never with a password: what messages and logs name.
    public var description: String {
        let query = sslMode == .prefer ? "" : "?sslmode=\(sslMode.rawValue)"
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(user)@\(shownHost):\(port)/\(database)\(query)"
    }

    /// The password for this URL: `PGPASSWORD`, else the first matching passfile line, else nil.
    package func password(environment: [String: String]) -> String? {
        if let password = environment["PGPASSWORD"] { return password }
        let path =
            environment["PGPASSFILE"]
            ?? environment["HOME"].map { $0 + "/.pgpass" }
        guard let path, let contents = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in contents.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            let fields = Self.passfileFields(line)
            guard fields.count == 5 else { continue }
            let wanted = [host, String(port), database, user]
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }

    /// A passfile line's fields: separated by `:`, with `\:` and `\\` escaped.
    private static func passfileFields(_ line: Substring) -> [String] {
        var fields: [String] = []
        var current = ""
        var escaped = false
        for character in line {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == ":" && fields.count < 4 {
                fields.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        fields.append(current)
        return fields
    }

    /// The connection settings for postgres-nio.
    func connectionConfiguration(
        environment: [String: String], schema: String?
    ) throws
        -> PostgresConnection.Configuration
    {
        let tls: PostgresConnection.Configuration.TLS
        switch sslMode {
        case .disable:
            tls = .disable
        case .prefer, .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            let context = try NIOSSLContext(configuration: configuration)
            tls = sslMode == .prefer ? .prefer(context) : .require(context)
        case .verifyFull:
            tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password(environment: environment), database: database,
            tls: tls)
        configuration.options.connectTimeout = .seconds(10)
        if let schema {
            configuration.options.additionalStartupParameters = [("search_path", schema)]
        }
        return configuration
    }
}

/// A store URL that cannot be used, and why.
public enum PostgresStoreURLError: Error, CustomStringConvertible, Sendable, Equatable {
    case malformed(String, reason: String)
    case passwordInURL

    public var description: String {
        switch self {
        case .malformed(let text, let reason):
            "store URL '\(text)' is unusable: \(reason)"
        case .passwordInURL:
            "the store URL holds a password, which every user of this host could read on the command line; "
                + "remove it from the URL and set PGPASSWORD or a passfile (~/.pgpass, or PGPASSFILE)"
        }
    }
}
