import Foundation
import MeshwardCore
import PostgresNIO
import Store

extension PostgresStore: GenerationStore {
    /// Every channel with its step and generations, keys unsealed; one snapshot (REPEATABLE READ),
    /// two queries. Throws `StoreError.sealedKeyInvalid` for a key that does not open under its
    /// own row's identity.
    public func loadChannels() async throws -> [ChannelID: ChannelRecord] {
        let cipher = try sealer.makeCipher()
        let sealVersion = sealer.sealVersion
        let database = url.description
        return try await transaction("load channels", .snapshot) { connection in
            var byRow: [Int64: ChannelRecord] = [:]
            var names = Interner<String>()
            var addresses = AddressInterner()
            let channels = try await connection.query(
                "SELECT id, from_node, to_node, family, step, step_changed_at FROM channels", logger: logger)
            for try await (row, from, to, familyText, stepText, changedAt) in channels.decode(
                (Int64, String, String, String, String, Double).self)
            {
                guard let family = AddressFamily(rawValue: familyText) else {
                    throw StoreError.corrupt(path: database, reason: "channel family '\(familyText)' is unknown")
                }
                guard let step = ChannelStep(rawValue: stepText) else {
                    throw StoreError.corrupt(path: database, reason: "channel step '\(stepText)' is unknown")
                }
                let id = ChannelID(from: names.intern(from), to: names.intern(to), family: family)
                byRow[row] = ChannelRecord(
                    id: id, step: step, stepChangedAt: Date(storedValue: changedAt), generations: [])
            }
            var associatedData: [UInt8] = []
            let generations = try await connection.query(
                """
                SELECT channel_id, number, spi, cipher, source, destination, created_at, state,
                       activated_at, superseded_at, retired_at, seal_version, nonce, sealed_key,
                       switch_sent_at, drain_packets, drain_packets_at
                FROM generations ORDER BY channel_id, number
                """, logger: logger)
            for try await generationRow in generations {
                let row = generationRow.makeRandomAccess()
                let channelRow = try row[0].decode(Int64.self)
                guard let channel = byRow[channelRow]?.id else {
                    throw StoreError.corrupt(path: database, reason: "a generation refers to a missing channel")
                }
                let number = Int(try row[1].decode(Int64.self))
                let spi = SPI(UInt32(truncatingIfNeeded: try row[2].decode(Int64.self)))
                let cipherText = try row[3].decode(String.self)
                let stateText = try row[7].decode(String.self)
                guard let kind = Cipher(rawValue: cipherText), let state = GenerationState(rawValue: stateText),
                    let source = addresses.intern(Data(try row.bytes(4))),
                    let destination = addresses.intern(Data(try row.bytes(5)))
                else {
                    throw StoreError.corrupt(
                        path: database, reason: "generation \(number) of channel \(channel) has unknown values")
                }
                let version = Int(try row[11].decode(Int32.self))
                guard version == sealVersion else {
                    throw StoreError.corrupt(
                        path: database,
                        reason: "generation \(number) of channel \(channel) is sealed with unknown version \(version)")
                }
                SealingContext.generation(
                    channel, number: number, spi: spi, cipher: kind, source: source, destination: destination,
                    into: &associatedData)
                guard
                    let key = Self.unseal(try row.bytes(12), try row.bytes(13), associatedData, with: cipher)
                else { throw StoreError.sealedKeyInvalid(channel: channel, generation: number) }
                func date(_ index: Int) throws -> Date? {
                    try row[index].decode(Double?.self).map(Date.init(storedValue:))
                }
                byRow[channelRow]?.generations.append(
                    Generation(
                        channel: channel, number: number, spi: spi, cipher: kind, key: KeyMaterial(bytes: key),
                        source: source, destination: destination,
                        createdAt: Date(storedValue: try row[6].decode(Double.self)), state: state,
                        activatedAt: try date(8), supersededAt: try date(9), retiredAt: try date(10),
                        switchSentAt: try date(14),
                        drainPackets: try row[15].decode(Int64?.self).map { UInt64(bitPattern: $0) },
                        drainPacketsAt: try date(16)))
            }
            var records: [ChannelID: ChannelRecord] = [:]
            records.reserveCapacity(byRow.count)
            for record in byRow.values { records[record.id] = record }
            return records
        }
    }

    /// True when the Store holds at least one channel. Unseals nothing.
    public func hasChannels() async throws -> Bool {
        try await transaction("count channels", .snapshot) { connection in
            try await connection.query("SELECT EXISTS (SELECT 1 FROM channels)", logger: logger).collect().first?
                .decode(Bool.self) ?? false
        }
    }

    /// Issues one generation per request in ONE transaction, with multi-row statements: the
    /// channels, their generation numbers, the SPI reservations and the sealed generations are
    /// each one statement per chunk of requests.
    public func issueGenerations(_ requests: [GenerationRequest], now: Date) async throws -> [Generation] {
        guard !requests.isEmpty else { return [] }
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
        let cipher = try sealer.makeCipher()
        let issued = try await transaction("issue generations") { connection -> [Generation] in
            // Channels: created when new, then each one's numbers taken in one UPDATE.
            var counts: [ChannelID: Int64] = [:]
            var order: [ChannelID] = []
            for request in requests {
                if counts[request.channel] == nil { order.append(request.channel) }
                counts[request.channel, default: 0] += 1
            }
            let initialStep = ChannelRecord.initialStep.rawValue
            for chunk in SQLRows.chunks(
                order.map {
                    [
                        .text($0.from), .text($0.to), .text($0.family.rawValue), .text(initialStep),
                        .real(now.storedValue),
                    ]
                })
            {
                try await connection.query(
                    SQLRows.query(
                        "INSERT INTO channels (from_node, to_node, family, step, step_changed_at)", chunk,
                        "ON CONFLICT (from_node, to_node, family) DO NOTHING"),
                    logger: logger)
            }
            var last: [ChannelID: (row: Int64, number: Int64)] = [:]
            for chunk in SQLRows.chunks(
                order.map { [.text($0.from), .text($0.to), .text($0.family.rawValue), .integer(counts[$0] ?? 0)] })
            {
                let rows = try await connection.query(
                    SQLRows.query(
                        "UPDATE channels AS c SET last_generation = c.last_generation + v.n FROM (", chunk,
                        """
                        ) AS v (from_node, to_node, family, n)
                        WHERE c.from_node = v.from_node AND c.to_node = v.to_node AND c.family = v.family
                        RETURNING c.from_node, c.to_node, c.family, c.id, c.last_generation
                        """),
                    logger: logger)
                for try await (from, to, family, row, number) in rows.decode(
                    (String, String, String, Int64, Int64).self)
                {
                    guard let family = AddressFamily(rawValue: family) else { continue }
                    last[ChannelID(from: from, to: to, family: family)] = (row, number)
                }
            }
            var numbers: [(row: Int64, number: Int)] = []
            var taken: [ChannelID: Int64] = [:]
            for request in requests {
                guard let (row, newest) = last[request.channel], let count = counts[request.channel] else {
                    throw StoreError.unknownChannel(request.channel)
                }
                let index = taken[request.channel, default: 0]
                taken[request.channel] = index + 1
                numbers.append((row, Int(newest - count + 1 + index)))
            }

            let spis = try await reserveSPIs(connection, for: requests, now: now)

            var issued: [Generation] = []
            issued.reserveCapacity(requests.count)
            var rows: [[SQLValue]] = []
            rows.reserveCapacity(requests.count)
            var associatedData: [UInt8] = []
            for (index, request) in requests.enumerated() {
                let (channelRow, number) = numbers[index]
                let spi = spis[index]
                let key = try KeyMaterial.random(count: request.cipher.keyLength)
                SealingContext.generation(
                    request.channel, number: number, spi: spi, cipher: request.cipher, source: request.source,
                    destination: request.destination, into: &associatedData)
                let sealed = try cipher.seal(key.bytes, associatedData: associatedData)
                rows.append([
                    .integer(channelRow), .integer(Int64(number)), .integer(Int64(spi.rawValue)),
                    .text(request.cipher.rawValue), .bytes(request.source.bytes), .bytes(request.destination.bytes),
                    .real(now.storedValue), .text(GenerationState.pending.rawValue),
                    .integer(Int64(sealer.sealVersion)), .bytes(sealed.nonce), .bytes(sealed.ciphertext),
                ])
                issued.append(
                    Generation(
                        channel: request.channel, number: number, spi: spi, cipher: request.cipher, key: key,
                        source: request.source, destination: request.destination, createdAt: now, state: .pending))
            }
            for chunk in SQLRows.chunks(rows) {
                try await connection.query(
                    SQLRows.query(
                        """
                        INSERT INTO generations (channel_id, number, spi, cipher, source, destination, created_at,
                            state, seal_version, nonce, sealed_key)
                        """, chunk),
                    logger: logger)
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

    /// Reserves one SPI per request: random, never issued on its destination, none of its
    /// `avoiding`. Candidates for every request go in one multi-row INSERT; the primary key
    /// refuses an SPI reserved before, and those requests draw again. A request that keeps
    /// colliding (a nearly full range) walks the range from a random point.
    private func reserveSPIs(
        _ connection: PostgresConnection, for requests: [GenerationRequest], now: Date
    ) async throws -> [SPI] {
        var result = [SPI?](repeating: nil, count: requests.count)
        var pending = Array(requests.indices)
        let draw = SPIDraw(range: spiRange)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<SPIDraw.randomTries where !pending.isEmpty {
            var candidates: [(index: Int, spi: UInt32)] = []
            var chosen: Set<[UInt8]> = []
            for index in pending {
                let request = requests[index]
                let candidate = draw.random(using: &generator)
                guard !request.avoiding.contains(SPI(candidate)),
                    chosen.insert(request.destination.bytes + withUnsafeBytes(of: candidate) { Array($0) }).inserted
                else { continue }
                candidates.append((index, candidate))
            }
            var accepted: Set<[UInt8]> = []
            let rows: [[SQLValue]] = candidates.map { index, spi in
                [
                    .bytes(requests[index].destination.bytes), .integer(Int64(spi)),
                    .text(requests[index].channel.description), .real(now.storedValue),
                ]
            }
            for chunk in SQLRows.chunks(rows) {
                let inserted = try await connection.query(
                    SQLRows.query(
                        "INSERT INTO issued_spis (destination, spi, channel, issued_at)", chunk,
                        "ON CONFLICT (destination, spi) DO NOTHING RETURNING destination, spi"),
                    logger: logger)
                for try await (destination, spi) in inserted.decode((ByteBuffer, Int64).self) {
                    let value = UInt32(truncatingIfNeeded: spi)
                    accepted.insert(Array(destination.readableBytesView) + withUnsafeBytes(of: value) { Array($0) })
                }
            }
            for (index, spi) in candidates
            where accepted.contains(requests[index].destination.bytes + withUnsafeBytes(of: spi) { Array($0) }) {
                result[index] = SPI(spi)
            }
            pending = pending.filter { result[$0] == nil }
        }
        for index in pending {
            result[index] = try await reserveByWalking(connection, for: requests[index], now: now)
        }
        return result.map { $0 ?? SPI(0) }
    }

    /// Walks the SPI range once from a random point, skipping what is reserved or foreign.
    private func reserveByWalking(
        _ connection: PostgresConnection, for request: GenerationRequest, now: Date
    ) async throws -> SPI {
        var taken: Set<UInt32> = []
        let destination = ByteBuffer(bytes: request.destination.bytes)
        let low = Int64(spiRange.lowerBound)
        let high = Int64(spiRange.upperBound)
        for try await spi in try await connection.query(
            "SELECT spi FROM issued_spis WHERE destination = \(destination) AND spi BETWEEN \(low) AND \(high)",
            logger: logger
        ).decode(Int64.self) {
            taken.insert(UInt32(truncatingIfNeeded: spi))
        }
        var generator = SystemRandomNumberGenerator()
        for candidate in SPIDraw(range: spiRange).walk(skipping: taken, avoiding: request.avoiding, using: &generator) {
            let spi = Int64(candidate)
            let channel = request.channel.description
            let inserted = try await connection.query(
                """
                INSERT INTO issued_spis (destination, spi, channel, issued_at)
                VALUES (\(destination), \(spi), \(channel), \(now.storedValue))
                ON CONFLICT (destination, spi) DO NOTHING RETURNING spi
                """, logger: logger
            ).collect()
            if !inserted.isEmpty { return SPI(candidate) }
        }
        throw StoreError.spiSpaceExhausted(destination: request.destination)
    }

    /// Writes steps and generation states of these channels in ONE transaction: one read of what
    /// is stored, then one UPDATE of channels, one of generations and one DELETE of pruned
    /// generations (per chunk). Refuses what `GenerationStore.update` refuses; nothing is written then.
    public func update(_ records: [ChannelRecord]) async throws {
        guard !records.isEmpty else { return }
        try await transaction("update channels") { connection in
            var channelRows = [Int64?](repeating: nil, count: records.count)
            var stored = [[Int: StoredGeneration]](repeating: [:], count: records.count)
            let keys: [[SQLValue]] = records.enumerated().map { index, record in
                [.integer(Int64(index)), .text(record.id.from), .text(record.id.to), .text(record.id.family.rawValue)]
            }
            for chunk in SQLRows.chunks(keys) {
                let rows = try await connection.query(
                    SQLRows.query(
                        "SELECT v.i, c.id, g.number, g.spi, g.state FROM (", chunk,
                        """
                        ) AS v (i, from_node, to_node, family)
                        JOIN channels AS c
                          ON c.from_node = v.from_node AND c.to_node = v.to_node AND c.family = v.family
                        LEFT JOIN generations AS g ON g.channel_id = c.id
                        """),
                    logger: logger)
                for try await (index, row, number, spi, state) in rows.decode(
                    (Int64, Int64, Int64?, Int64?, String?).self)
                {
                    channelRows[Int(index)] = row
                    if let number, let spi, let state {
                        stored[Int(index)][Int(number)] = StoredGeneration(
                            spi: UInt32(truncatingIfNeeded: spi), state: state)
                    }
                }
            }
            var steps: [[SQLValue]] = []
            var states: [[SQLValue]] = []
            var pruned: [[SQLValue]] = []
            for (index, record) in records.enumerated() {
                let id = record.id
                guard let channelRow = channelRows[index] else { throw StoreError.unknownChannel(id) }
                steps.append([
                    .integer(channelRow), .text(record.step.rawValue), .real(record.stepChangedAt.storedValue),
                ])
                for number in try StoredGeneration.check(record, against: stored[index]) {
                    pruned.append([.integer(channelRow), .integer(Int64(number))])
                }
                for generation in record.generations {
                    states.append([
                        .integer(channelRow), .integer(Int64(generation.number)), .text(generation.state.rawValue),
                        .real(generation.activatedAt?.storedValue), .real(generation.supersededAt?.storedValue),
                        .real(generation.retiredAt?.storedValue), .real(generation.switchSentAt?.storedValue),
                        .integer(generation.drainPackets.map { Int64(bitPattern: $0) }),
                        .real(generation.drainPacketsAt?.storedValue),
                    ])
                }
            }
            for chunk in SQLRows.chunks(steps) {
                try await connection.query(
                    SQLRows.query(
                        "UPDATE channels AS c SET step = v.step, step_changed_at = v.at FROM (", chunk,
                        """
                        ) AS v (id, step, at)
                        WHERE c.id = v.id AND (c.step IS DISTINCT FROM v.step OR c.step_changed_at IS DISTINCT FROM v.at)
                        """),
                    logger: logger)
            }
            for chunk in SQLRows.chunks(states) {
                try await connection.query(
                    SQLRows.query(
                        """
                        UPDATE generations AS g SET state = v.state, activated_at = v.activated_at,
                            superseded_at = v.superseded_at, retired_at = v.retired_at,
                            switch_sent_at = v.switch_sent_at, drain_packets = v.drain_packets,
                            drain_packets_at = v.drain_packets_at
                        FROM (
                        """, chunk,
                        """
                        ) AS v (channel_id, number, state, activated_at, superseded_at, retired_at, switch_sent_at,
                                drain_packets, drain_packets_at)
                        WHERE g.channel_id = v.channel_id AND g.number = v.number
                          AND (g.state IS DISTINCT FROM v.state OR g.activated_at IS DISTINCT FROM v.activated_at
                               OR g.superseded_at IS DISTINCT FROM v.superseded_at
                               OR g.retired_at IS DISTINCT FROM v.retired_at
                               OR g.switch_sent_at IS DISTINCT FROM v.switch_sent_at
                               OR g.drain_packets IS DISTINCT FROM v.drain_packets
                               OR g.drain_packets_at IS DISTINCT FROM v.drain_packets_at)
                        """),
                    logger: logger)
            }
            for chunk in SQLRows.chunks(pruned) {
                try await connection.query(
                    SQLRows.query(
                        "DELETE FROM generations AS g USING (", chunk,
                        ") AS v (channel_id, number) WHERE g.channel_id = v.channel_id AND g.number = v.number"),
                    logger: logger)
            }
        }
    }

    /// Forgets channels that have left every kernel, with their generations and keys (cascade),
    /// in ONE transaction. Their SPIs stay reserved forever.
    public func removeChannels(_ ids: [ChannelID]) async throws {
        guard !ids.isEmpty else { return }
        let removed = try await transaction("remove channels") { connection -> [String] in
            var removed: [String] = []
            for chunk in SQLRows.chunks(ids.map { [.text($0.from), .text($0.to), .text($0.family.rawValue)] }) {
                let rows = try await connection.query(
                    SQLRows.query(
                        "DELETE FROM channels AS c USING (", chunk,
                        """
                        ) AS v (from_node, to_node, family)
                        WHERE c.from_node = v.from_node AND c.to_node = v.to_node AND c.family = v.family
                        RETURNING c.from_node, c.to_node, c.family
                        """),
                    logger: logger)
                for try await (from, to, family) in rows.decode((String, String, String).self) {
                    removed.append("\(from)->\(to)/\(family)")
                }
            }
            return removed
        }
        for id in removed { logger.info("removed channel", metadata: ["channel": "\(id)"]) }
    }

    /// Unaccounted inbound SAs whose drain has started.
    public func unaccountedSAs() async throws -> [UnaccountedSA] {
        try await transaction("read unaccounted SAs", .snapshot) { connection in
            var result: [UnaccountedSA] = []
            for try await (destination, spi, freedAt) in try await connection.query(
                "SELECT destination, spi, freed_at FROM unaccounted_sas", logger: logger
            ).decode((ByteBuffer, Int64, Double).self) {
                guard let address = IPAddress(bytes: Array(destination.readableBytesView)) else { continue }
                result.append(
                    UnaccountedSA(
                        destination: address, spi: SPI(UInt32(truncatingIfNeeded: spi)),
                        freedAt: Date(storedValue: freedAt)))
            }
            return result
        }
    }

    /// Records drains that started (an SA already recorded keeps its first time) and forgets
    /// `forgotten`, in one transaction of multi-row statements.
    public func recordUnaccountedSAs(
        freed: [UnaccountedSA], forgotten: [(destination: IPAddress, spi: SPI)]
    )
        async throws
    {
        guard !freed.isEmpty || !forgotten.isEmpty else { return }
        try await transaction("record unaccounted SAs") { connection in
            for chunk in SQLRows.chunks(
                freed.map {
                    [.bytes($0.destination.bytes), .integer(Int64($0.spi.rawValue)), .real($0.freedAt.storedValue)]
                })
            {
                try await connection.query(
                    SQLRows.query(
                        "INSERT INTO unaccounted_sas (destination, spi, freed_at)", chunk,
                        "ON CONFLICT (destination, spi) DO NOTHING"),
                    logger: logger)
            }
            for chunk in SQLRows.chunks(
                forgotten.map { [.bytes($0.destination.bytes), .integer(Int64($0.spi.rawValue))] })
            {
                try await connection.query(
                    SQLRows.query(
                        "DELETE FROM unaccounted_sas AS u USING (", chunk,
                        ") AS v (destination, spi) WHERE u.destination = v.destination AND u.spi = v.spi"),
                    logger: logger)
            }
        }
    }
}

extension PostgresStore: SPIReservations {
    /// Every SPI ever issued for `destination`, by any channel, live or removed.
    public func reservedSPIs(for destination: IPAddress) async throws -> Set<SPI> {
        try await transaction("read reserved SPIs", .snapshot) { connection in
            var spis: Set<SPI> = []
            let address = ByteBuffer(bytes: destination.bytes)
            for try await spi in try await connection.query(
                "SELECT spi FROM issued_spis WHERE destination = \(address)", logger: logger
            ).decode(Int64.self) {
                spis.insert(SPI(UInt32(truncatingIfNeeded: spi)))
            }
            return spis
        }
    }
}
