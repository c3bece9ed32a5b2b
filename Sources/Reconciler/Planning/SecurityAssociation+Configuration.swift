import Kernel
import MeshwardCore

extension SecurityAssociation {
    /// True when the two describe the same SA as far as traffic is concerned: addresses, SPI,
    /// reqid, cipher and key. Counters and replay settings are not compared.
    public func hasSameConfiguration(as other: SecurityAssociation) -> Bool {
        source == other.source && destination == other.destination && spi == other.spi && reqid == other.reqid
            && cipher == other.cipher && key == other.key
    }
}
