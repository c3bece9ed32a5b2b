import Foundation
import MeshwardCore
import Store
import Synchronization

/// An in-memory pass store seeded from the real one, for planning without writing.
///
/// Generations it issues are placeholders: their SPIs come from the top of the SPI space and
/// are listed in `placeholderSPIs`, so a rendered plan can say "new" instead of showing an SPI
/// that will never exist.
public final class ScratchGenerationStore: GenerationStore, JournalStore {
    private struct State {
        /// The records as of the last `fold()`; `pending` holds what was written since.
        var channels: [ChannelID: ChannelRecord]
        /// Updates and removals not yet applied to `channels`, in order. A rehearsal writes
        /// every channel's record in every pass and reads them back only when it issues a
        /// generation: applied at once, a million records were rehashed on one thread per pass.
        var pending: [PendingChange] = []
        var nextSPI: UInt32 = 0xFFFF_FFFF
        var placeholders: [SPI: Int] = [:]
        var journal: [JournalEntry] = []
        var unaccounted: [SAKey: UnaccountedSA] = [:]

        /// Applies the pending updates and removals to `channels`, in the order they were made.
        mutating func fold() {
            for change in pending {
                switch change {
                case .update(let records): for record in records { channels[record.id] = record }
                case .remove(let ids): for id in ids { channels[id] = nil }
                }
            }
            pending = []
        }
    }

    private enum PendingChange {
        case update([ChannelRecord])
        case remove([ChannelID])
    }

    private struct SAKey: Hashable {
        var destination: IPAddress
        var spi: SPI
    }

    private let state: Mutex<State>

    /// - Parameter firstSPI: the SPI of the first placeholder; the next ones count down from it.
    public init(channels: [ChannelID: ChannelRecord], firstSPI: UInt32 = 0xFFFF_FFFF) {
        state = Mutex(State(channels: channels, nextSPI: firstSPI))
    }

    /// SPIs issued here, each with its ordinal (1 for the first placeholder, ...).
    public var placeholderSPIs: [SPI: Int] { state.withLock { $0.placeholders } }

    /// Every journal entry recorded here.
    public var journal: [JournalEntry] { state.withLock { $0.journal } }

    public func loadChannels() throws -> [ChannelID: ChannelRecord] {
        state.withLock { state in
            state.fold()
            return state.channels
        }
    }

    public func hasChannels() throws -> Bool {
        state.withLock { state in
            state.fold()
            return !state.channels.isEmpty
        }
    }

    public func issueGenerations(_ requests: [GenerationRequest], now: Date) throws -> [Generation] {
        // The keys first, outside the lock and from one draw of random bytes (they are never
        // installed on a real kernel); then every generation under one acquisition, each record
        // changed in place.
        let random = try SecureRandom.bytes(count: requests.reduce(0) { $0 + $1.cipher.keyLength })
        var offset = 0
        let keys = requests.map { request in
            defer { offset += request.cipher.keyLength }
            return KeyMaterial(bytes: Array(random[offset..<offset + request.cipher.keyLength]))
        }
        return state.withLock { state in
            state.fold()
            return zip(requests, keys).map { request, key in
                var spi = SPI(state.nextSPI)
                while request.avoiding.contains(spi) { spi = SPI(spi.rawValue - 1) }
                state.nextSPI = spi.rawValue - 1
                state.placeholders[spi] = state.placeholders.count + 1
                let channel = request.channel
                let generation = Generation(
                    channel: channel, number: (state.channels[channel]?.generations.map(\.number).max() ?? 0) + 1,
                    spi: spi, cipher: request.cipher, key: key, source: request.source,
                    destination: request.destination, createdAt: now, state: .pending)
                state.channels[
                    channel, default: ChannelRecord(id: channel, step: .new, stepChangedAt: now, generations: [])
                ]
                .generations.append(generation)
                return generation
            }
        }
    }

    public func update(_ records: [ChannelRecord]) throws {
        guard !records.isEmpty else { return }
        state.withLock { $0.pending.append(.update(records)) }
    }

    public func removeChannels(_ ids: [ChannelID]) throws {
        guard !ids.isEmpty else { return }
        state.withLock { $0.pending.append(.remove(ids)) }
    }

    @discardableResult public func appendJournal(_ entries: [JournalEntry]) throws -> [JournalEntry] {
        state.withLock { state in
            let numbered = entries.enumerated().map { offset, entry in
                var entry = entry
                entry.id = Int64(state.journal.count + offset + 1)
                return entry
            }
            state.journal.append(contentsOf: numbered)
            return numbered
        }
    }

    public func completeJournal(_ entries: [JournalEntry]) throws {
        state.withLock { state in
            for entry in entries {
                guard let id = entry.id, id >= 1, Int(id) <= state.journal.count else { continue }
                state.journal[Int(id) - 1] = entry
            }
        }
    }

    public func journal(limit: Int?, node: String?) throws -> [JournalEntry] {
        let entries = state.withLock { $0.journal }.reversed().filter { node == nil || $0.node == node }
        return Array(entries.prefix(limit ?? entries.count))
    }

    @discardableResult public func pruneJournal(plannedBefore date: Date) throws -> Int {
        state.withLock { state in
            let before = state.journal.count
            state.journal.removeAll { $0.plannedAt < date }
            return before - state.journal.count
        }
    }

    public func unaccountedSAs() throws -> [UnaccountedSA] { state.withLock { Array($0.unaccounted.values) } }

    public func recordUnaccountedSAs(freed: [UnaccountedSA], forgotten: [(destination: IPAddress, spi: SPI)]) throws {
        state.withLock { state in
            for sa in freed where state.unaccounted[SAKey(destination: sa.destination, spi: sa.spi)] == nil {
                state.unaccounted[SAKey(destination: sa.destination, spi: sa.spi)] = sa
            }
            for sa in forgotten { state.unaccounted[SAKey(destination: sa.destination, spi: sa.spi)] = nil }
        }
    }
}
