/// Where one generation of a channel's keys stands in its life.
///
/// `pending` (issued, being installed) -> `active` (the sender uses it) -> `retiring` (the sender
/// switched to a newer generation; the receiver keeps the inbound SA while traffic drains) ->
/// `retired` (deleted from both kernels). The store records the state; the reconciler decides it.
public enum GenerationState: String, Sendable, Hashable, Codable, CaseIterable {
    case pending
    case active
    case retiring
    case retired
}
