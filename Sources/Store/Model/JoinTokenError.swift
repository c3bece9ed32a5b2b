import Foundation

/// Why a join token was refused. Each description names the token by its id, never its secret.
public enum JoinTokenError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No token has this id.
    case unknown(id: String)
    /// The token was spent already, at `at`.
    case spent(id: String, at: Date)
    /// The token was revoked, at `at`.
    case revoked(id: String, at: Date)
    /// The token expired at `at`.
    case expired(id: String, at: Date)
    /// The token was issued for another node than the one presenting it.
    case wrongNode(id: String, issuedFor: String, presentedFor: String)
    /// A token with this id is stored already.
    case duplicate(id: String)

    public var description: String {
        switch self {
        case .unknown(let id):
            return "join token \(id) is unknown: no such token was issued here (or its Store was replaced); "
                + "issue a new one with 'meshward agent token'"
        case .spent(let id, let at):
            return "join token \(id) was spent at \(Self.format(at)): a token enrolls once; "
                + "issue a new one with 'meshward agent token'"
        case .revoked(let id, let at):
            return "join token \(id) was revoked at \(Self.format(at)); issue a new one with 'meshward agent token'"
        case .expired(let id, let at):
            return "join token \(id) expired at \(Self.format(at)); issue a new one with 'meshward agent token'"
        case .wrongNode(let id, let issuedFor, let presentedFor):
            return "join token \(id) was issued for node '\(issuedFor)', not '\(presentedFor)'; "
                + "give node '\(presentedFor)' a token issued for it"
        case .duplicate(let id):
            return "join token \(id) is stored already; issue the token again (ids are random)"
        }
    }

    private static func format(_ date: Date) -> String { date.formatted(.iso8601) }
}
