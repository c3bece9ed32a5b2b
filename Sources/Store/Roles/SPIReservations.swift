import MeshwardCore

/// The role that remembers every SPI ever issued per destination, so that none is issued twice.
///
/// Reserving happens inside `GenerationStore.issueGenerations`, in the transaction that issues
/// the generation (a reservation and its generation commit together or not at all); this role
/// reads what is reserved. Reservations are never released: not when a generation is pruned, not
/// when its channel is removed. A kernel's replay protection and a receiver's SA lookup both
/// assume that an SPI on one destination names one key, ever.
public protocol SPIReservations: Sendable {
    /// Every SPI reserved for `destination`, by any channel, live or removed.
    func reservedSPIs(for destination: IPAddress) async throws -> Set<SPI>
}
