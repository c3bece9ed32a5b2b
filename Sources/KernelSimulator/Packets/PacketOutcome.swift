import MeshwardCore

/// What became of one packet sent through the simulated fleet.
public enum PacketOutcome: Sendable, Hashable, CustomStringConvertible {
    /// The receiver accepted it after decrypting it with the SA of `spi`.
    case deliveredEncrypted(spi: SPI)
    /// The receiver accepted it in plaintext.
    case deliveredPlaintext
    /// A kernel dropped it; `counter` is the `/proc/net/xfrm_stat` name of the counter that moved
    /// (on the sender for `XfrmOut*`, on the receiver for `XfrmIn*`).
    case dropped(counter: String)
    /// The packet never reached a kernel's IPsec path: the sender is unknown, has no address of
    /// the destination's family, or no node holds the destination address.
    case undeliverable(reason: String)

    /// A drop that moved `statistic`.
    public static func dropped(_ statistic: XfrmStatistic) -> PacketOutcome {
        .dropped(counter: statistic.rawValue)
    }

    /// True for both delivered cases.
    public var isDelivered: Bool {
        switch self {
        case .deliveredEncrypted, .deliveredPlaintext: true
        case .dropped, .undeliverable: false
        }
    }

    public var description: String {
        switch self {
        case .deliveredEncrypted(let spi): "delivered encrypted (spi \(spi.hex))"
        case .deliveredPlaintext: "delivered in plaintext"
        case .dropped(let counter): "dropped (\(counter))"
        case .undeliverable(let reason): "undeliverable: \(reason)"
        }
    }
}
