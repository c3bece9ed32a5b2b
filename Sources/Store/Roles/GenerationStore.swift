import Foundation
import MeshwardCore

/// The role that keeps channels and their generations: what every pass reads and records.
///
/// Every method is one transaction. Methods that a pass calls for many channels take them all
/// at once (`issueGenerations`, `update`, `removeChannels`, `recordUnaccountedSAs`), so a store
/// across a network pays one round trip per pass and step, not one per channel. Once a store
/// instance holds the lease (`LeaseStore`), every write here first checks, inside its
/// transaction, that the lease's holder and epoch are still its own, and throws
/// `StoreError.leaseNotHeld` otherwise: a deposed controller cannot record anything.
public protocol GenerationStore: Sendable {
    /// Every channel with its step and generations, keys unsealed; one consistent snapshot.
    func loadChannels() async throws -> [ChannelID: ChannelRecord]

    /// True when the Store holds at least one channel. Unseals nothing.
    func hasChannels() async throws -> Bool

    /// Issues one generation per request, all or none, returned in the order of `requests`.
    ///
    /// A channel the Store does not hold yet is created (step `ChannelRecord.initialStep`); two
    /// requests for one channel give it two consecutive numbers. Each key is fresh from the
    /// CSPRNG and sealed before the transaction commits; each SPI is reserved for its
    /// destination in the same transaction (`SPIReservations`), never one issued there before
    /// and none of the request's `avoiding`. Every generation starts `pending`.
    func issueGenerations(_ requests: [GenerationRequest], now: Date) async throws -> [Generation]

    /// Writes the steps and generation states (with their timestamps) of these channels, all or
    /// none. Keys, SPIs, ciphers and addresses never change: a record that contradicts them is
    /// refused (`StoreError.invalidRecord`), as is a channel the Store does not hold
    /// (`StoreError.unknownChannel`). A stored generation missing from its record is deleted
    /// only when it is retired; a live one missing is refused.
    func update(_ records: [ChannelRecord]) async throws

    /// Forgets channels that have left every kernel, with their generations and keys, in one
    /// transaction. Their SPIs stay reserved forever. Channels the Store does not hold are skipped.
    func removeChannels(_ ids: [ChannelID]) async throws

    /// Unaccounted inbound SAs whose drain has started (kept across runs).
    func unaccountedSAs() async throws -> [UnaccountedSA]

    /// Records drains that started (an SA already recorded keeps its first time) and forgets
    /// the SAs in `forgotten`, in one transaction.
    func recordUnaccountedSAs(freed: [UnaccountedSA], forgotten: [(destination: IPAddress, spi: SPI)]) async throws
}
