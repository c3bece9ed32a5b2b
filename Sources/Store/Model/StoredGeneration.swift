import MeshwardCore

/// What `GenerationStore.update` compares a record with: a stored generation's SPI and state.
package struct StoredGeneration: Sendable, Hashable {
    package var spi: UInt32
    package var state: String

    package init(spi: UInt32, state: String) {
        self.spi = spi
        self.state = state
    }

    /// Checks `record` against its channel's stored generations, as every conformer's `update`
    /// does, and returns the stored generations the record no longer lists (all retired: only
    /// those may be pruned). Throws `StoreError.invalidRecord` for a generation of another
    /// channel, one the Store does not hold, one whose SPI differs, or a live one left out.
    package static func check(_ record: ChannelRecord, against stored: [Int: StoredGeneration]) throws -> [Int] {
        let id = record.id
        var remaining = stored
        for generation in record.generations {
            guard generation.channel == id else {
                throw StoreError.invalidRecord(
                    channel: id, reason: "generation \(generation.number) belongs to \(generation.channel)")
            }
            guard let existing = remaining.removeValue(forKey: generation.number) else {
                throw StoreError.invalidRecord(
                    channel: id,
                    reason: "generation \(generation.number) is not in the store; "
                        + "only issueGeneration creates generations")
            }
            guard existing.spi == generation.spi.rawValue else {
                throw StoreError.invalidRecord(
                    channel: id,
                    reason: "generation \(generation.number) has SPI \(SPI(existing.spi)) in the store, "
                        + "not \(generation.spi); SPIs never change")
            }
        }
        for (number, existing) in remaining.sorted(by: { $0.key < $1.key })
        where existing.state != GenerationState.retired.rawValue {
            throw StoreError.invalidRecord(
                channel: id,
                reason: "generation \(number) is \(existing.state) in the store but missing from the "
                    + "record; only retired generations may be pruned")
        }
        return remaining.keys.sorted()
    }
}
