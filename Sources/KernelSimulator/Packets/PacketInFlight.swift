import MeshwardCore

/// A packet that left its sender's IPsec output path and has not reached its receiver yet.
///
/// `SimulatedFleetState.transmit` makes one; `SimulatedFleetState.deliver` hands it to the
/// receiver's input path as the receiver's kernel is *then*, so a packet encrypted under an SPI
/// that the receiver deletes while the packet travels is dropped (`XfrmInNoStates`), as on a
/// real link with latency.
public struct PacketInFlight: Sendable, Hashable {
    /// The node whose kernel will receive it (the holder of the destination address at sending).
    public let receiver: String
    /// The fleet's `currentTime` when it left the sender.
    public let sentAt: UInt64
    let header: PacketHeader
    let transmission: Transmission

    /// The SPI it is encrypted under; nil for plaintext.
    public var spi: SPI? {
        if case .esp(let spi, _, _, _) = transmission { return spi }
        return nil
    }
}

/// What became of a packet as it left its sender.
public enum PacketDeparture: Sendable, Hashable {
    /// It is on the wire, encrypted or not.
    case inFlight(PacketInFlight)
    /// It never left: the sender's kernel dropped it, or nothing could carry it.
    case ended(PacketOutcome)
}
