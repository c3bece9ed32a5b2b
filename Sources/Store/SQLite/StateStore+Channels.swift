import Foundation
import GRDB
import MeshwardCore
import Synchronization

extension StateStore {
    /// Every channel with its step and generations, keys unsealed.
    ///
    /// One consistent snapshot, read with one query per table (never one per channel): both are
    /// walked in channel order and merged, so no intermediate map is built. Throws
    /// `StoreError.sealedKeyInvalid` for a key that does not open under its own row's identity.
    public func loadChannels() throws -> [ChannelID: ChannelRecord] {
        try loadChannels(parts: Self.loadParts)
    }

    /// How many parts a large load is read in, at once: one per core, at most four.
    static var loadParts: Int { min(4, max(1, ProcessInfo.processInfo.activeProcessorCount)) }

    /// Below this many channels a load is read in one part: starting the others costs more
    /// than it saves.
    static let partedLoadThreshold = 50_000

    /// `loadChannels()`, read in up to `parts` ranges of channel ids at once, each on its own
    /// connection, when the Store holds at least `threshold` channels.
    ///
    /// Every part reads the same snapshot: the parts' read transactions all begin while this
    /// connection holds the write lock (`BEGIN IMMEDIATE`, rolled back once they have begun),
    /// so no writer, in this process or another, commits in between. Where the lock cannot be
    /// taken (a read-only database) or the Store is not a pool, the load is one part.
    func loadChannels(
        parts: Int, threshold: Int = partedLoadThreshold, batch: Int = loadBatch
    ) throws -> [ChannelID: ChannelRecord] {
        let started = ContinuousClock.now
        var loaded: (records: [ChannelID: ChannelRecord], parts: Int, unsealing: Duration)?
        if parts > 1, let pool = writer as? DatabasePool,
            let split = try read(
                "load channels", { db in try Self.partBounds(db, parts: parts, threshold: threshold) })
        {
            loaded = try loadInParts(pool, bounds: split.bounds, expected: split.count, batch: batch)
        }
        if loaded == nil {
            let part = try read("load channels") { db in try loadPart(db, from: nil, below: nil) }
            var records = [ChannelID: ChannelRecord](minimumCapacity: part.records.count)
            for record in part.records { records[record.id] = record }
            loaded = (records, 1, part.unsealing)
        }
        guard let loaded else { return [:] }
        logger.debug(
            "loaded channels",
            metadata: [
                "store.channels": "\(loaded.records.count)",
                "store.load_parts": "\(loaded.parts)",
                "store.load_seconds": "\((ContinuousClock.now - started).seconds)",
                "store.unseal_seconds": "\(loaded.unsealing.seconds)",
            ])
        return loaded.records
    }

    /// One part of a load: its records in channel order (those not yet handed on in batches),
    /// and the time spent unsealing.
    struct LoadedChannels: Sendable {
        var records: [ChannelRecord] = []
        var unsealing = Duration.zero
    }

    /// How many records a part of a parted load hands on at a time (by default).
    static let loadBatch = 8_192

    /// The ids that split the channels into `parts` ranges of about equal size, and how many
    /// channels there are; nil when the Store holds fewer than `threshold` channels. The ranges
    /// are open at both ends, so a channel added after this read still falls in exactly one.
    private static func partBounds(
        _ db: Database, parts: Int, threshold: Int
    ) throws -> (bounds: [Int64], count: Int)? {
        let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM channels") ?? 0
        guard count >= threshold else { return nil }
        var bounds: [Int64] = []
        for part in 1..<parts {
            let id = try Int64.fetchOne(
                db, sql: "SELECT id FROM channels ORDER BY id LIMIT 1 OFFSET ?", arguments: [count * part / parts])
            if let id, id > (bounds.last ?? Int64.min) { bounds.append(id) }
        }
        return bounds.isEmpty ? nil : (bounds, count)
    }

    /// Reads the ranges `bounds` splits the ids into, each on a reader of `pool`, all in one
    /// snapshot (see `loadChannels(parts:threshold:)`). The parts hand on their records in
    /// batches, which this thread puts into the map while they go on reading: the map is not
    /// built after the last part ends. `expected`: about how many channels there are. Nil when
    /// the write lock could not be taken.
    private func loadInParts(
        _ pool: DatabasePool, bounds: [Int64], expected: Int, batch: Int
    ) throws -> (records: [ChannelID: ChannelRecord], parts: Int, unsealing: Duration)? {
        let ranges = zip([nil] + bounds, bounds.map { Optional($0) } + [nil]).map { (from: $0, below: $1) }
        let results = Mutex([Result<LoadedChannels, any Error>?](repeating: nil, count: ranges.count))
        let batches = RecordBatches(parts: ranges.count)
        let locked: Bool = try Self.perform(path: databasePath, operation: "load channels") {
            pool.writeWithoutTransaction { db in
                // While this holds the write lock nothing commits: every part that begins now
                // reads the same snapshot.
                do {
                    try db.execute(sql: "BEGIN IMMEDIATE")
                } catch {
                    return false
                }
                defer { try? db.execute(sql: "ROLLBACK") }
                let begun = DispatchSemaphore(value: 0)
                for (index, range) in ranges.enumerated() {
                    pool.asyncRead { database in
                        defer { batches.finish() }
                        var signalled = false
                        defer { if !signalled { begun.signal() } }
                        let result = Result { () throws -> LoadedChannels in
                            let db = try database.get()
                            // The first read fixes the transaction's snapshot.
                            _ = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metadata")
                            begun.signal()
                            signalled = true
                            return try self.loadPart(db, from: range.from, below: range.below, batch: batch) {
                                batches.push($0)
                            }
                        }
                        results.withLock { $0[index] = result }
                    }
                }
                for _ in ranges { begun.wait() }
                return true
            }
        }
        guard locked else { return nil }
        // Sized for the channels counted when the parts were split (a map that grows to a
        // million entries rehashes them all at every doubling).
        var records = [ChannelID: ChannelRecord](minimumCapacity: expected)
        while let taken = batches.next() {
            for batch in taken {
                for record in batch { records[record.id] = record }
            }
        }
        let parts = try Self.perform(path: databasePath, operation: "load channels") {
            try results.withLock { results in
                try results.map { result in
                    guard let result else {
                        throw StoreError.corrupt(path: databasePath, reason: "a part was not read")
                    }
                    return try result.get()
                }
            }
        }
        // What a part read after its last full batch.
        for part in parts {
            for record in part.records { records[record.id] = record }
        }
        return (records, parts.count, parts.reduce(Duration.zero) { $0 + $1.unsealing })
    }

    /// The channels whose ids are at least `from` and below `below` (nil: unbounded), in id
    /// order, with their generations, keys unsealed.
    /// With `handOn`, the records are handed to it in batches of `batch` as they are read;
    /// those left over are returned.
    private func loadPart(
        _ db: Database, from: Int64?, below: Int64?, batch: Int = loadBatch,
        handOn: (([ChannelRecord]) -> Void)? = nil
    ) throws -> LoadedChannels {
        let cipher = try sealer.makeCipher()
        let sealVersion = sealer.sealVersion
        var loaded = LoadedChannels()
        let range = (from ?? Int64.min, (below ?? Int64.max))
        var names = NameInterner()
        var associatedData: [UInt8] = []
        associatedData.reserveCapacity(128)
        // The columns are read in place (`RawColumns`): a million rows must not make a
        // million strings and byte arrays only to parse them.
        let channelStatement = try db.makeStatement(
            sql: """
                SELECT id, from_node, to_node, family, step, step_changed_at FROM channels
                WHERE id >= ? AND id < ? ORDER BY id
                """)
        channelStatement.arguments = [range.0, range.1]
        let channels = try Row.fetchCursor(channelStatement)
        let channel = RawColumns(channelStatement)
        /// The next channel row as a value.
        func nextChannel() throws -> (row: Int64, record: ChannelRecord)? {
            guard try channels.next() != nil else { return nil }
            guard let family = StoredSpellings.families.value(channel.bytes(3)) else {
                throw StoreError.corrupt(
                    path: databasePath, reason: "channel family '\(channel.text(3))' is unknown")
            }
            guard let step = StoredSpellings.steps.value(channel.bytes(4)) else {
                throw StoreError.corrupt(path: databasePath, reason: "channel step '\(channel.text(4))' is unknown")
            }
            let id = ChannelID(
                from: names.intern(channel.bytes(1), slot: 0), to: names.intern(channel.bytes(2), slot: 1),
                family: family)
            let record = ChannelRecord(
                id: id, step: step, stepChangedAt: Date(storedValue: channel.double(5)), generations: [])
            return (channel.int64(0), record)
        }

        /// Adds a complete record, handing on a full batch.
        func complete(_ record: ChannelRecord) {
            loaded.records.append(record)
            if let handOn, loaded.records.count >= batch {
                handOn(loaded.records)
                loaded.records = []
                loaded.records.reserveCapacity(batch)
            }
        }

        var current = try nextChannel()
        let generationStatement = try db.makeStatement(
            sql: """
                SELECT channel_id, number, spi, cipher, source, destination, created_at, state,
                       activated_at, superseded_at, retired_at, seal_version, nonce, sealed_key,
                       switch_sent_at, drain_packets, drain_packets_at
                FROM generations WHERE channel_id >= ? AND channel_id < ? ORDER BY channel_id, number
                """)
        generationStatement.arguments = [range.0, range.1]
        let generations = try Row.fetchCursor(generationStatement)
        let column = RawColumns(generationStatement)
        while try generations.next() != nil {
            let channelRow = column.int64(0)
            // Channels before this generation's own are complete (or have no generations).
            while let channel = current, channel.row < channelRow {
                complete(channel.record)
                current = try nextChannel()
            }
            guard current?.row == channelRow, let channel = current?.record.id else {
                throw StoreError.corrupt(path: databasePath, reason: "a generation refers to a missing channel")
            }
            let number = Int(column.int64(1))
            let spi = SPI(UInt32(truncatingIfNeeded: column.int64(2)))
            guard let kind = StoredSpellings.ciphers.value(column.bytes(3)),
                let state = StoredSpellings.generationStates.value(column.bytes(7)),
                let source = IPAddress(networkOrder: column.bytes(4)),
                let destination = IPAddress(networkOrder: column.bytes(5))
            else {
                throw StoreError.corrupt(
                    path: databasePath, reason: "generation \(number) of channel \(channel) has unknown values")
            }
            let version = Int(column.int64(11))
            guard version == sealVersion else {
                throw StoreError.corrupt(
                    path: databasePath,
                    reason: "generation \(number) of channel \(channel) is sealed with unknown version \(version)")
            }
            SealingContext.generation(
                channel, number: number, spi: spi, cipher: kind, source: source, destination: destination,
                into: &associatedData)
            let unsealStarted = ContinuousClock.now
            let key = associatedData.withUnsafeBytes { associatedData in
                cipher.open(nonce: column.bytes(12), ciphertext: column.bytes(13), associatedData: associatedData)
            }
            loaded.unsealing += ContinuousClock.now - unsealStarted
            guard let key else { throw StoreError.sealedKeyInvalid(channel: channel, generation: number) }
            current?.record.generations.append(
                Generation(
                    channel: channel, number: number, spi: spi, cipher: kind, key: KeyMaterial(bytes: key),
                    source: source, destination: destination, createdAt: Date(storedValue: column.double(6)),
                    state: state, activatedAt: column.optionalDouble(8).map(Date.init(storedValue:)),
                    supersededAt: column.optionalDouble(9).map(Date.init(storedValue:)),
                    retiredAt: column.optionalDouble(10).map(Date.init(storedValue:)),
                    switchSentAt: column.optionalDouble(14).map(Date.init(storedValue:)),
                    drainPackets: column.optionalInt64(15).map { UInt64(bitPattern: $0) },
                    drainPacketsAt: column.optionalDouble(16).map(Date.init(storedValue:))))
        }
        while let channel = current {
            complete(channel.record)
            current = try nextChannel()
        }
        return loaded
    }

    /// Issues a new generation of `channel`, creating the channel (step `ChannelRecord.initialStep`)
    /// if the store does not hold it yet.
    ///
    /// The key is `cipher.keyLength` fresh bytes from OpenSSL's CSPRNG. The SPI is at least 0x100,
    /// was never issued before for `destination` (by any channel, ever, including removed ones)
    /// and is none of `avoiding` (foreign SPIs seen there). The generation starts `pending`; it is
    /// sealed and committed before this returns.
    public func issueGeneration(
        for channel: ChannelID, cipher: Cipher, source: IPAddress, destination: IPAddress, avoiding: Set<SPI>,
        now: Date
    ) throws -> Generation {
        let request = GenerationRequest(
            channel: channel, cipher: cipher, source: source, destination: destination, avoiding: avoiding)
        return try issueGenerations([request], now: now)[0]
    }

    /// Issues one generation per request in ONE transaction: all are committed, or none.
    ///
    /// Each is issued as `issueGeneration` describes; two requests for one channel give it two
    /// consecutive generations. Returns them in the order of `requests`.
    public func issueGenerations(_ requests: [GenerationRequest], now: Date) throws -> [Generation] {
        for request in requests {
            guard request.source.family == request.channel.family,
                request.destination.family == request.channel.family
            else {
                throw StoreError.invalidRecord(
                    channel: request.channel,
                    reason: "addresses \(request.source) and \(request.destination) are not both "
                        + "\(request.channel.family)")
            }
        }
        let cipher = try Self.perform(path: databasePath, operation: "issue generations") { try sealer.makeCipher() }
        let issued = try write("issue generations") { db -> [Generation] in
            var issued: [Generation] = []
            issued.reserveCapacity(requests.count)
            var associatedData: [UInt8] = []
            for request in requests {
                let channel = request.channel
                try db.cachedStatement(
                    sql: """
                        INSERT INTO channels (from_node, to_node, family, step, step_changed_at)
                        VALUES (?, ?, ?, ?, ?) ON CONFLICT (from_node, to_node, family) DO NOTHING
                        """
                ).execute(arguments: [
                    channel.from, channel.to, channel.family.rawValue, ChannelRecord.initialStep.rawValue,
                    now.storedValue,
                ])
                guard
                    let row = try Row.fetchOne(
                        db.cachedStatement(
                            sql: """
                                UPDATE channels SET last_generation = last_generation + 1
                                WHERE from_node = ? AND to_node = ? AND family = ?
                                RETURNING id, last_generation
                                """),
                        arguments: [channel.from, channel.to, channel.family.rawValue])
                else {
                    throw StoreError.unknownChannel(channel)
                }
                let channelRow: Int64 = row[0]
                let number: Int = row[1]
                let spi = try reserveSPI(db, for: request, now: now)
                let key = try KeyMaterial.random(count: request.cipher.keyLength)
                SealingContext.generation(
                    channel, number: number, spi: spi, cipher: request.cipher, source: request.source,
                    destination: request.destination, into: &associatedData)
                let sealed = try cipher.seal(key.bytes, associatedData: associatedData)
                try db.cachedStatement(
                    sql: """
                        INSERT INTO generations (channel_id, number, spi, cipher, source, destination, created_at,
                            state, seal_version, nonce, sealed_key)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """
                ).execute(arguments: [
                    channelRow, number, Int64(spi.rawValue), request.cipher.rawValue, Data(request.source.bytes),
                    Data(request.destination.bytes), now.storedValue, GenerationState.pending.rawValue,
                    sealer.sealVersion, Data(sealed.nonce), Data(sealed.ciphertext),
                ])
                issued.append(
                    Generation(
                        channel: channel, number: number, spi: spi, cipher: request.cipher, key: key,
                        source: request.source, destination: request.destination, createdAt: now, state: .pending))
            }
            return issued
        }
        for generation in issued {
            logger.debug(
                "issued generation",
                metadata: [
                    "channel": "\(generation.channel)", "generation": "\(generation.number)",
                    "sa.spi": "\(generation.spi.hex)", "sa.destination": "\(generation.destination)",
                ])
        }
        return issued
    }

    /// Writes the steps and generation states (with their timestamps) of these channels in ONE
    /// transaction.
    ///
    /// Keys, SPIs, ciphers and addresses are immutable: they are never written, and a record whose
    /// generation names another SPI than the stored one is refused. A stored generation that a
    /// record no longer lists is deleted if it is retired (pruning); if it is not retired the update
    /// is refused, since its key may still be in a kernel. Throws `StoreError.unknownChannel` for a
    /// channel the store does not hold; nothing is written then.
    public func update(_ records: [ChannelRecord]) throws {
        try write("update channels") { db in
            for record in records {
                let id = record.id
                guard
                    let channelRow = try Int64.fetchOne(
                        db.cachedStatement(
                            sql: "SELECT id FROM channels WHERE from_node = ? AND to_node = ? AND family = ?"),
                        arguments: [id.from, id.to, id.family.rawValue])
                else {
                    throw StoreError.unknownChannel(id)
                }
                try db.cachedStatement(
                    sql: """
                        UPDATE channels SET step = ?1, step_changed_at = ?2
                        WHERE id = ?3 AND (step IS NOT ?1 OR step_changed_at IS NOT ?2)
                        """
                ).execute(arguments: [record.step.rawValue, record.stepChangedAt.storedValue, channelRow])

                var stored: [Int: StoredGeneration] = [:]
                let rows = try Row.fetchCursor(
                    db.cachedStatement(sql: "SELECT number, spi, state FROM generations WHERE channel_id = ?"),
                    arguments: [channelRow])
                while let row = try rows.next() {
                    stored[row[0]] = StoredGeneration(spi: UInt32(truncatingIfNeeded: row[1] as Int64), state: row[2])
                }
                let pruned = try StoredGeneration.check(record, against: stored)
                for generation in record.generations {
                    try db.cachedStatement(
                        sql: """
                            UPDATE generations
                            SET state = ?1, activated_at = ?2, superseded_at = ?3, retired_at = ?4,
                                switch_sent_at = ?7, drain_packets = ?8, drain_packets_at = ?9
                            WHERE channel_id = ?5 AND number = ?6
                              AND (state IS NOT ?1 OR activated_at IS NOT ?2 OR superseded_at IS NOT ?3
                                   OR retired_at IS NOT ?4 OR switch_sent_at IS NOT ?7 OR drain_packets IS NOT ?8
                                   OR drain_packets_at IS NOT ?9)
                            """
                    ).execute(arguments: [
                        generation.state.rawValue, generation.activatedAt?.storedValue,
                        generation.supersededAt?.storedValue, generation.retiredAt?.storedValue, channelRow,
                        generation.number, generation.switchSentAt?.storedValue,
                        generation.drainPackets.map { Int64(bitPattern: $0) }, generation.drainPacketsAt?.storedValue,
                    ])
                }
                for number in pruned {
                    try db.cachedStatement(sql: "DELETE FROM generations WHERE channel_id = ? AND number = ?")
                        .execute(arguments: [channelRow, number])
                }
            }
        }
    }

    /// Forgets a channel that has left every kernel, with its generations and keys. Its SPIs stay
    /// reserved forever. Does nothing when the store does not hold the channel.
    public func removeChannel(_ id: ChannelID) throws {
        try removeChannels([id])
    }

    /// Forgets channels that have left every kernel, with their generations and keys, in ONE
    /// transaction. Their SPIs stay reserved forever. Channels the store does not hold are skipped.
    public func removeChannels(_ ids: [ChannelID]) throws {
        guard !ids.isEmpty else { return }
        let removed = try write("remove channels") { db -> [ChannelID] in
            let delete = try db.cachedStatement(
                sql: "DELETE FROM channels WHERE from_node = ? AND to_node = ? AND family = ?")
            return try ids.filter { id in
                try delete.execute(arguments: [id.from, id.to, id.family.rawValue])
                return db.changesCount > 0
            }
        }
        for id in removed { logger.info("removed channel", metadata: ["channel": "\(id)"]) }
    }

    /// Every SPI ever issued for `destination`, by any channel, live or removed.
    public func reservedSPIs(for destination: IPAddress) throws -> Set<SPI> {
        try read("read reserved SPIs") { db in
            try Set(
                Int64.fetchAll(
                    db, sql: "SELECT spi FROM issued_spis WHERE destination = ?",
                    arguments: [Data(destination.bytes)]
                ).map { SPI(UInt32(truncatingIfNeeded: $0)) })
        }
    }

    /// Reserves an SPI for the request's destination: random, never issued there, not foreign.
    private func reserveSPI(_ db: Database, for request: GenerationRequest, now: Date) throws -> SPI {
        let destination = Data(request.destination.bytes)
        let insert = try db.cachedStatement(
            sql: """
                INSERT INTO issued_spis (destination, spi, channel, issued_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (destination, spi) DO NOTHING
                """)
        func tryReserve(_ candidate: UInt32) throws -> Bool {
            guard !request.avoiding.contains(SPI(candidate)) else { return false }
            try insert.execute(arguments: [destination, Int64(candidate), request.channel.description, now.storedValue])
            return db.changesCount == 1
        }
        let draw = SPIDraw(range: spiRange)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<SPIDraw.randomTries {
            let candidate = draw.random(using: &generator)
            if try tryReserve(candidate) { return SPI(candidate) }
        }
        // The range is nearly full (only a narrowed range gets here): walk it once from a
        // random point, skipping what is taken.
        let taken = try Set(
            Int64.fetchAll(
                db, sql: "SELECT spi FROM issued_spis WHERE destination = ? AND spi BETWEEN ? AND ?",
                arguments: [destination, Int64(spiRange.lowerBound), Int64(spiRange.upperBound)]
            ).map { UInt32(truncatingIfNeeded: $0) })
        for candidate in draw.walk(skipping: taken, avoiding: request.avoiding, using: &generator)
        where try tryReserve(candidate) {
            return SPI(candidate)
        }
        throw StoreError.spiSpaceExhausted(destination: request.destination)
    }

    package static func unseal(
        _ nonce: Data?, _ sealed: Data?, _ associatedData: [UInt8], with cipher: any KeySealingCipher
    )
        -> [UInt8]?
    {
        guard let nonce, let sealed else { return nil }
        return nonce.withUnsafeBytes { nonce in
            sealed.withUnsafeBytes { sealed in
                associatedData.withUnsafeBytes { ad in
                    cipher.open(nonce: nonce, ciphertext: sealed, associatedData: ad)
                }
            }
        }
    }
}

/// Shares one copy of repeated values (node names, steps) across a bulk load.
package struct Interner<Value: Hashable> {
    private var seen: Set<Value> = []

    package init() {}

    package mutating func intern(_ value: Value) -> Value {
        if let existing = seen.firstIndex(of: value) { return seen[existing] }
        seen.insert(value)
        return value
    }
}

/// Shares one `IPAddress` (and its byte array) per distinct address across a bulk load.
package struct AddressInterner {
    private var seen: [Data: IPAddress] = [:]

    package init() {}

    package mutating func intern(_ bytes: Data?) -> IPAddress? {
        guard let bytes else { return nil }
        if let address = seen[bytes] { return address }
        guard let address = IPAddress(bytes: Array(bytes)) else { return nil }
        seen[Data(Array(bytes))] = address
        return address
    }
}

/// Batches of records handed from the readers of a parted load to the thread that puts them
/// into the map.
private final class RecordBatches: Sendable {
    private let state: Mutex<(batches: [[ChannelRecord]], open: Int)>
    /// Signalled once per batch handed on and once per part that ends.
    private let arrived = DispatchSemaphore(value: 0)

    init(parts: Int) { state = Mutex(([], parts)) }

    func push(_ batch: [ChannelRecord]) {
        state.withLock { $0.batches.append(batch) }
        arrived.signal()
    }

    /// A part has ended (read to its end or failed).
    func finish() {
        state.withLock { $0.open -= 1 }
        arrived.signal()
    }

    /// Every batch handed on since the last call, waiting until there is one; nil once every
    /// part has ended and every batch was taken.
    func next() -> [[ChannelRecord]]? {
        while true {
            let (taken, open) = state.withLock { state in
                defer { state.batches = [] }
                return (state.batches, state.open)
            }
            if !taken.isEmpty { return taken }
            if open == 0 { return nil }
            arrived.wait()
        }
    }
}
