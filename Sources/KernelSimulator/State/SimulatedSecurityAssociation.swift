import Kernel
import MeshwardCore

/// An SA as the simulated kernel stores it: its configuration, the key's fingerprint (never the
/// key's bytes), its counters, and the sequence state of both directions.
struct SimulatedSecurityAssociation: Sendable, Hashable, Codable {
    var source: IPAddress
    var destination: IPAddress
    var spi: SPI
    var reqid: Reqid
    var cipher: Cipher
    /// `KeyMaterial.fingerprint` of the key: enough to tell keys apart, never enough to recover one.
    var keyFingerprint: String
    var replayWindow: UInt32
    var extendedSequenceNumbers: Bool
    var counters: SACounters
    /// The node's insertion counter when the SA was added; larger is newer.
    var insertionOrder: UInt64
    /// The sequence number of the last packet sent through this SA; a fresh SA starts at 1.
    var lastSentSequence: UInt64 = 0
    /// What a receiving SA has seen.
    var replay: ReplayWindow

    init(_ association: SecurityAssociation, insertionOrder: UInt64, addTime: UInt64) {
        source = association.source
        destination = association.destination
        spi = association.spi
        reqid = association.reqid
        cipher = association.cipher
        keyFingerprint = association.key.fingerprint
        replayWindow = association.replayWindow
        extendedSequenceNumbers = association.extendedSequenceNumbers
        counters = SACounters(addTime: addTime)
        self.insertionOrder = insertionOrder
        replay = ReplayWindow(size: association.replayWindow)
    }

    var identifier: SAIdentifier { SAIdentifier(destination: destination, spi: spi) }

    /// The SA as a backend reports it: the key as its fingerprint, with the current counters.
    var reported: SecurityAssociation {
        SecurityAssociation(
            source: source, destination: destination, spi: spi, reqid: reqid, cipher: cipher,
            key: .fingerprint(keyFingerprint), replayWindow: replayWindow,
            extendedSequenceNumbers: extendedSequenceNumbers, counters: counters
        )
    }

    /// Counts one packet of `bytes` through the SA at `now`.
    mutating func count(bytes: UInt64, now: UInt64) {
        counters.packets += 1
        counters.bytes += bytes
        if counters.useTime == 0 { counters.useTime = now }
    }
}
