import Foundation
import MeshwardCore

/// An inbound SA of ours that no generation accounts for (a lost Store left it), named by its
/// destination and SPI, with the time a pass first saw its sender stop using it: its drain runs
/// from then, across runs.
public struct UnaccountedSA: Sendable, Hashable {
    public var destination: IPAddress
    public var spi: SPI
    public var freedAt: Date

    public init(destination: IPAddress, spi: SPI, freedAt: Date) {
        self.destination = destination
        self.spi = spi
        self.freedAt = freedAt
    }
}
