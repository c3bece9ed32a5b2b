import DesiredState
import Foundation
import MeshwardCore
import Reconciler
import Store
import Synchronization

extension MeshwardController {
    /// Throws `ControllerError.clusterMismatch` when the Store already belongs to a cluster
    /// other than the spec's: a spec of another fleet, or the wrong `--state-dir`, would
    /// otherwise remove every channel of the Store's cluster. A Store with no recorded cluster
    /// (never applied, or lost) accepts any spec.
    static func refuseOtherCluster(_ intent: FleetIntent, recorded: String?, directory: String) throws {
        guard let recorded, recorded != intent.cluster else { return }
        throw ControllerError.clusterMismatch(spec: intent.cluster, store: recorded, directory: directory)
    }

    /// Throws `ControllerError.massRemoval` when applying `intent` would remove more than half
    /// of the channels the Store holds (`removed * 2 > held`): one flow deleted by mistake, a
    /// spec directory with a file missing. Exactly half is allowed; an empty Store never trips it.
    ///
    /// `records` are the channels the run covers (all of them, or a target's); `held` counts every
    /// channel of the Store.
    static func refuseMassRemoval(
        _ intent: FleetIntent, records: [ChannelID: ChannelRecord], held: Int, directory: String
    ) throws {
        let removal = RemovalCount(held: held, removed: RemovalCount(intent: intent, records: records).removed)
        guard removal.isMassRemoval else { return }
        throw ControllerError.massRemoval(removed: removal.removed, held: removal.held, directory: directory)
    }
}

/// How many of the Store's channels a spec removes.
public struct RemovalCount: Sendable, Equatable {
    /// Channels the Store holds.
    public var held: Int
    /// Of those, channels the spec no longer names.
    public var removed: Int

    public init(held: Int, removed: Int) {
        self.held = held
        self.removed = removed
    }

    /// Channels already being removed (step `removing`, a removal an earlier run started and
    /// `--force` allowed) count as held but not as removed: finishing them needs no new `--force`.
    init(intent: FleetIntent, records: [ChannelID: ChannelRecord]) {
        self.init(held: records.count, unnamed: Self.unnamed(records, in: intent), in: records)
    }

    /// The count of `held` channels of which `unnamed` (records the spec no longer names, of
    /// `records`) are removed, those already `removing` left out.
    init(held: Int, unnamed: Set<ChannelID>, in records: [ChannelID: ChannelRecord]) {
        self.init(held: held, removed: unnamed.count { records[$0]?.step != .removing })
    }

    /// The channels of `records` that `intent` does not name. A lookup of each spec channel in
    /// `records` first: when every record is named (the usual case), no set of the spec's
    /// channels is built.
    static func unnamed(
        _ records: [ChannelID: ChannelRecord], in intent: FleetIntent, recorded known: Int? = nil
    ) -> Set<ChannelID> {
        let named = known ?? recordedCount(of: intent, in: records)
        guard named < records.count else { return [] }
        return Set(records.keys).subtracting(intent.channels.map(\.id))
    }

    /// How many of `intent`'s channels `records` holds: counted in runs on every core at fleet
    /// scale (a million lookups, each hashing two names).
    static func recordedCount(
        of intent: FleetIntent, in records: [ChannelID: ChannelRecord], minimumRun: Int = 50_000
    ) -> Int {
        let channels = intent.channels
        let runs = min(ProcessInfo.processInfo.activeProcessorCount, channels.count / max(1, minimumRun))
        guard runs > 1 else { return channels.count { records[$0.id] != nil } }
        let total = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: runs) { run in
            let range = (channels.count * run / runs)..<(channels.count * (run + 1) / runs)
            let found = channels[range].count { records[$0.id] != nil }
            total.withLock { $0 += found }
        }
        return total.withLock { $0 }
    }

    /// True when more than half of the held channels go: what needs `--force`.
    public var isMassRemoval: Bool { removed * 2 > held }
}
