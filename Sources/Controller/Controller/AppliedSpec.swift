import DesiredState
import Foundation
import Kernel
import MeshwardCore
import Store
import Synchronization

/// The spec the last untargeted `apply` ran, kept in the Store's metadata: the files as they
/// were read. `plan --refresh=false` compiles it again to know which policies the kernels were
/// given (the channel records hold the generations, not the traffic).
public struct AppliedSpec: Codable, Sendable {
    static let metadataKey = "applied.spec"
    /// The recorded spec's revision alone, so that a cycle that applies the same spec again
    /// reads a few bytes to know it has nothing to write.
    static let revisionKey = "applied.spec.revision"

    var revision: String
    var files: [SpecSource]

    /// Records `intent`'s files unless they are already the recorded ones; an intent built in
    /// code (no files) records nothing.
    public static func record(_ intent: FleetIntent, in store: any MetadataStore) async throws {
        guard !intent.sources.isEmpty, try await store.metadata(revisionKey) != intent.revision else { return }
        let encoded = try JSONEncoder().encode(AppliedSpec(revision: intent.revision, files: intent.sources))
        try await store.setMetadata(metadataKey, String(decoding: encoded, as: UTF8.self))
        try await store.setMetadata(revisionKey, intent.revision)
    }

    /// The recorded spec, compiled; nil when none is recorded. Throws
    /// `ControllerError.unreadableAppliedSpec` when it does not decode or compile.
    static func load(from store: any MetadataStore) async throws -> FleetIntent? {
        try await load(from: store, reusing: nil)
    }

    /// `load(from:)`, answering `spec` itself without decoding or compiling anything when the
    /// recorded spec's revision is `spec`'s: the revision covers everything a spec declares.
    static func load(from store: any MetadataStore, reusing spec: FleetIntent?) async throws -> FleetIntent? {
        if let spec, try await store.metadata(revisionKey) == spec.revision,
            try await store.metadata(metadataKey) != nil
        {
            return spec
        }
        guard let text = try await store.metadata(metadataKey) else { return nil }
        let recorded: AppliedSpec
        do {
            recorded = try JSONDecoder().decode(AppliedSpec.self, from: Data(text.utf8))
        } catch {
            throw ControllerError.unreadableAppliedSpec(reason: "it is not a recorded spec (\(error))")
        }
        let result = SpecLoader().load(sources: recorded.files)
        guard let intent = result.intent else {
            let first = result.errors.first.map { ": \($0)" } ?? ""
            throw ControllerError.unreadableAppliedSpec(
                reason: "it no longer compiles (\(result.errors.count) errors\(first))")
        }
        return intent
    }
}

/// What every kernel holds if it holds exactly what the Store's records say was given to it:
/// the readings `plan --refresh=false` rehearses on instead of reading the kernels.
///
/// Per channel record: the active generation as an SA on both nodes, a pending or retiring one
/// as the receiver's inbound SA alone (where a rekey starts and where its drain ends); and, per
/// traffic selector of the channel in the spec that made the records (`applied`), the outbound
/// policy on the sender pinning the active generation and the inbound policy on the receiver,
/// as the planner writes them. A channel the applied spec does not have gets its SAs alone. A
/// channel in the middle of a step is thus taken at the step's start or end, never in between.
enum RecordedReadings {
    /// The channels whose planning can change nothing when the kernels hold what the records
    /// say: the spec declares them exactly as the applied spec did (addresses, traffic, cipher,
    /// enforcement, rekey, drain), the record is established with its active generation alone,
    /// and no rekey is due — by age before a margin well past anything a rehearsal's clock can
    /// jump to, or by request. (A rekey by packet count is not seen: counters are in the
    /// kernels.) The rest, and every channel the records or the spec lack, is planned.
    ///
    /// One flag per channel of `intent`, in its order (true: settled), and how many of
    /// `intent`'s channels `records` holds.
    static func settled(
        records: [ChannelID: ChannelRecord], applied: FleetIntent, intent: FleetIntent,
        rekeyRequests: [ChannelID: Date], now: Date, run settledRun: Int = Self.settledRun
    ) -> (flags: [Bool], recorded: Int) {
        let longestDrain = intent.channels.map(\.drain).max() ?? .zero
        let horizon = now.addingTimeInterval(3_600 + 2 * longestDrain.timeInterval)
        // The revision covers every channel's declaration: when it is the applied one, every
        // channel is declared as it was applied, and none is compared.
        let sameSpec = applied.revision == intent.revision
        // Runs of channels are judged on every core; each run starts its walk of `applied` at
        // its own first channel.
        let channels = intent.channels
        let runs = (channels.count + settledRun - 1) / settledRun
        let judged = Mutex([(flags: [Bool], recorded: Int)?](repeating: nil, count: runs))
        DispatchQueue.concurrentPerform(iterations: runs) { run in
            let range = (run * settledRun)..<min(channels.count, (run + 1) * settledRun)
            var flags = [Bool](repeating: false, count: range.count)
            var recorded = 0
            var appliedIndex = sameSpec ? 0 : Self.firstPosition(notBefore: channels[range.lowerBound].id, in: applied)
            for position in range {
                let channel = channels[position]
                guard let record = records[channel.id] else { continue }
                recorded += 1
                guard record.step == .established, rekeyRequests[channel.id] == nil,
                    sameSpec || Self.declared(channel, in: applied, from: &appliedIndex)
                else { continue }
                var live = record.generations.lazy.filter { $0.state != .retired }.makeIterator()
                guard let active = live.next(), live.next() == nil, active.state == .active,
                    active.createdAt.addingTimeInterval(channel.rekey.every.timeInterval) > horizon
                else { continue }
                flags[position - range.lowerBound] = true
            }
            judged.withLock { $0[run] = (flags, recorded) }
        }
        var flags: [Bool] = []
        flags.reserveCapacity(channels.count)
        var recorded = 0
        for run in judged.withLock({ $0 }) {
            guard let run else { continue }
            flags.append(contentsOf: run.flags)
            recorded += run.recorded
        }
        return (flags, recorded)
    }

    /// How many channels `settled` judges in one run on one core (by default).
    static let settledRun = 16_384

    /// The position of the first of `applied`'s channels (sorted by id) whose id is not before
    /// `id`: where a run starting at `id` begins its walk.
    private static func firstPosition(notBefore id: ChannelID, in applied: FleetIntent) -> Int {
        var low = 0
        var high = applied.channels.count
        while low < high {
            let middle = (low + high) / 2
            if applied.channels[middle].id < id { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Whether `applied` declares `channel` exactly so. Both intents' channels are sorted by
    /// id, and `channel`s come in that order: `index` walks `applied`'s channels once.
    private static func declared(_ channel: ChannelIntent, in applied: FleetIntent, from index: inout Int) -> Bool {
        while index < applied.channels.count, applied.channels[index].id < channel.id { index += 1 }
        return index < applied.channels.count && applied.channels[index] == channel
    }

    static func readings(
        records: [ChannelID: ChannelRecord], applied: FleetIntent?, nodes: some Sequence<String>
    ) -> [String: NodeObservation] {
        var readings: [String: NodeObservation] = [:]
        for node in nodes { readings[node] = NodeObservation() }
        guard let applied else { return readings }
        let reqid = Reqid(applied.reqid)
        for id in records.keys.sorted() {
            guard let record = records[id] else { continue }
            for generation in record.generations where generation.state != .retired {
                let association = SecurityAssociation(
                    source: generation.source, destination: generation.destination, spi: generation.spi, reqid: reqid,
                    cipher: generation.cipher, key: .material(generation.key))
                if generation.state == .active {
                    readings[id.from, default: NodeObservation()].securityAssociations.append(association)
                }
                readings[id.to, default: NodeObservation()].securityAssociations.append(association)
            }
            guard let channel = applied.channel(id), let active = record.active else { continue }
            for traffic in channel.traffic {
                let selector = PolicySelector(
                    source: IPPrefix(host: channel.source), destination: IPPrefix(host: channel.destination),
                    traffic: traffic)
                readings[id.from, default: NodeObservation()].policies.append(
                    SecurityPolicy(
                        selector: selector, direction: .outbound,
                        template: PolicyTemplate(family: id.family, spi: active.spi, reqid: reqid, isOptional: false)))
                readings[id.to, default: NodeObservation()].policies.append(
                    SecurityPolicy(
                        selector: selector, direction: .inbound,
                        template: PolicyTemplate(
                            family: id.family, spi: nil, reqid: reqid, isOptional: channel.enforcement == .permissive)))
            }
        }
        return readings
    }
}
