/// Whether a receiver insists on ESP once a channel is established.
public enum Enforcement: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// The inbound policy requires ESP: plaintext from the peer is dropped.
    case required
    /// The inbound policy accepts ESP and plaintext (template optional), e.g. during a migration.
    case permissive

    /// The spec spelling.
    public var description: String { rawValue }
}
