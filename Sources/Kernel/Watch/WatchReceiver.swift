import Foundation
import MeshwardCore

/// The receiver's copy of one watched node: the owned objects as the node's watch stream and
/// the fresh readings of it have shown them, where the copy stands, and whether it can be used
/// for planning (design.md §12).
///
/// Pure: the controller's watch feeds it each message (`receive(_:at:)`), each fresh reading
/// (`adopt(_:at:)`) and each batch's answered position (`applied(at:)`), and asks it for a
/// reading (`observation(now:)`).
public struct WatchReceiver: Sendable {
    /// What the receiver must do after a message.
    public enum Action: Sendable, Hashable {
        /// Nothing: the message was taken in.
        case none
        /// The node's objects changed outside what this controller applied: plan again.
        case drift
        /// The copy cannot go on from this stream (a gap in the seqs, another epoch, a digest
        /// that differs): end the stream and ask for a snapshot.
        case resnapshot(reason: String)
    }

    public let node: String
    /// The objects as last known.
    public private(set) var objects = WatchedObjects()
    /// Where the copy stands; nil until a snapshot or a fresh reading with a position.
    public private(set) var position: WatchPosition?
    /// The host's boot ID as the watch last reported it.
    public private(set) var bootID: String?
    /// When the stream last said anything.
    public private(set) var lastMessageAt: Date?
    /// When the copy last changed.
    public private(set) var lastChangeAt: Date?
    /// How many snapshots the copy was rebuilt from, and how many of those a mismatched
    /// digest forced.
    public private(set) var snapshots = 0
    public private(set) var digestMismatches = 0
    /// The position a batch of this controller's was answered with, until the copy reaches it.
    public private(set) var awaitedPosition: WatchPosition?
    /// A batch of this controller's is on its way or awaiting its answer: the changes seen
    /// meanwhile are taken as its own.
    public private(set) var batchInFlight = false
    /// The last fresh reading: its counters, statistics and foreign SPIs complete a reading
    /// made from the copy (a watch carries none of them).
    private var lastReading: NodeObservation?
    /// The last fresh reading's SAs by identity.
    private var lastReadSAs: [SAIdentifier: SecurityAssociation] = [:]
    /// A snapshot being received.
    private var incoming: WatchedObjects?

    public init(node: String) {
        self.node = node
    }

    /// Takes in one message of the node's stream at `now`.
    public mutating func receive(_ message: WatchMessage, at now: Date) -> Action {
        lastMessageAt = now
        switch message {
        case .snapshot(let change):
            if incoming == nil { incoming = WatchedObjects() }
            incoming?.apply(change)
            return .none
        case .snapshotEnd(let end, let bootID):
            let received = incoming ?? WatchedObjects()
            incoming = nil
            snapshots += 1
            // A copy that never stood anywhere (the first snapshot of a node neither streamed
            // nor read before) has nothing the snapshot could differ from: no drift.
            let known = position != nil
            let changed = received != objects || (self.bootID != nil && bootID != self.bootID)
            objects = received
            position = end
            self.bootID = bootID
            if let awaited = awaitedPosition, awaited.epoch != end.epoch || awaited.seq <= end.seq {
                awaitedPosition = nil
            }
            if changed { lastChangeAt = now }
            return changed && known && awaitedPosition == nil ? .drift : .none
        case .change(let seq, let change):
            guard let current = position else { return .resnapshot(reason: "a change before any snapshot") }
            if seq <= current.seq { return .none }
            guard seq == current.seq + 1 else {
                return .resnapshot(reason: "a gap in the stream: seq \(seq) after \(current.seq)")
            }
            position = WatchPosition(epoch: current.epoch, seq: seq)
            let changed = objects.apply(change)
            if changed { lastChangeAt = now }
            let ours: Bool
            if batchInFlight {
                ours = true
            } else if let awaited = awaitedPosition, awaited.epoch == current.epoch {
                ours = seq <= awaited.seq
                if seq >= awaited.seq { awaitedPosition = nil }
            } else {
                ours = false
            }
            return changed && !ours ? .drift : .none
        case .progress(let progress):
            if let bootID = progress.bootID, let known = self.bootID, bootID != known {
                self.bootID = bootID
                return .resnapshot(reason: "the host's boot ID changed")
            }
            guard let current = position else { return .none }
            if progress.position.epoch != current.epoch {
                return .resnapshot(reason: "the watch's epoch changed (the agent restarted)")
            }
            if progress.position.seq == current.seq, progress.digest != objects.digest {
                digestMismatches += 1
                return .resnapshot(reason: "the progress digest differs from this copy's")
            }
            return .none
        }
    }

    /// Adopts a fresh reading of the node made at `now`: when the reading has a position at or
    /// after this copy's (or the copy has none, or another epoch), the copy becomes the
    /// reading; its counters, statistics and foreign SPIs complete later readings of the copy.
    public mutating func adopt(_ reading: NodeObservation, at now: Date) {
        lastReading = reading
        lastReadSAs = Dictionary(reading.securityAssociations.map { ($0.identifier, $0) }, uniquingKeysWith: { $1 })
        guard let read = reading.watchPosition else { return }
        if let current = position, current.epoch == read.epoch, current.seq > read.seq { return }
        objects = WatchedObjects(securityAssociations: reading.securityAssociations, policies: reading.policies)
        position = read
        if let bootID = reading.bootID { self.bootID = bootID }
        if let awaited = awaitedPosition, awaited.epoch != read.epoch || awaited.seq <= read.seq {
            awaitedPosition = nil
        }
    }

    /// Notes that a batch of this controller's is about to be sent: until it is answered
    /// (`applied(at:)`), the copy does not stand for the node, and the changes seen are its own.
    public mutating func sending() {
        batchInFlight = true
    }

    /// Notes that a batch of this controller's was answered at `position`: until the copy
    /// reaches it, the copy does not stand for the node.
    public mutating func applied(at position: WatchPosition?) {
        batchInFlight = false
        guard let position else {
            // A batch with no position (or whose answer never came): only a fresh reading says
            // what the node holds now.
            lastReading = nil
            lastReadSAs = [:]
            return
        }
        if let current = self.position, current.epoch == position.epoch, current.seq >= position.seq { return }
        awaitedPosition = position
    }

    /// Forgets the stream's position (it ended): the next stream asks for a snapshot when
    /// `resnapshot` is true, or resumes from the position otherwise.
    public mutating func streamEnded(resnapshot: Bool) {
        incoming = nil
        if resnapshot { position = nil }
    }

    /// A reading made from the copy, for planning: nil when the copy has no position yet, waits
    /// for a batch's changes, or has no fresh reading to take counters from.
    public func observation() -> NodeObservation? {
        guard position != nil, awaitedPosition == nil, !batchInFlight, let lastReading else { return nil }
        var reading = NodeObservation(
            securityAssociations: objects.securityAssociations.sorted(by: { $0.key < $1.key }).map { id, sa in
                var sa = sa
                if let read = lastReadSAs[id] {
                    sa.counters = read.counters
                    if case .material = read.key, read.key.fingerprint == sa.key.fingerprint { sa.key = read.key }
                }
                return sa
            },
            policies: objects.policies.sorted(by: { $0.key < $1.key }).map(\.value), statistics: lastReading.statistics,
            foreignSPIs: lastReading.foreignSPIs)
        reading.bootID = bootID ?? lastReading.bootID
        reading.agentCertificateExpiry = lastReading.agentCertificateExpiry
        reading.watchPosition = position
        return reading
    }
}
