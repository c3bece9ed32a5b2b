/// Where a channel stands, as status and progress show it. Derived in every pass from the
/// generations and what the kernels hold (level-based), and kept in the Store for `status`.
public enum ChannelStep: String, Sendable, Hashable, Codable, CaseIterable {
    /// No generation is issued yet.
    case new
    /// The first generation is being installed: receiver, then sender, then enforcement.
    case creating
    /// Everything is in place.
    case established
    /// A new generation is being installed and the sender switched to it.
    case rekeying
    /// The sender switched; the old inbound SA waits out the drain.
    case draining
    /// Established, with objects being added, replaced or removed (a port, the enforcement).
    case updating
    /// The spec no longer names the channel; its objects are being removed in reverse order.
    case removing
    /// A node the channel needs did not answer.
    case blocked
}
