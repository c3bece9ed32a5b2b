import Kernel
import MeshwardCore

extension SecurityAssociation {
    /// True when the two describe the same SA as far as traffic is concerned: addresses, SPI,
    /// reqid, cipher, key, anti-replay window and ESN. Counters are not compared.
    public func hasSameConfiguration(as other: SecurityAssociation) -> Bool {
        source == other.source && destination == other.destination && spi == other.spi && reqid == other.reqid
            && cipher == other.cipher && key == other.key && replayWindow == other.replayWindow
            && extendedSequenceNumbers == other.extendedSequenceNumbers
    }
}
